//! Per-step cost with a warm compile cache: load (cache hit) and instantiate + call.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use kstep::runtime::cache::CompileCache;
use kstep::runtime::{Limits, Runtime};
use kstep::steps::dotenv::{self, Flavor};

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("kstep-bench-cache-{}", std::process::id()));
    let runtime = Runtime::with_cache(Some(CompileCache::new(dir.clone()))).unwrap();
    let wasm = kstep::builtins::get("dotenv").unwrap().wasm().unwrap();
    let wasm = wasm.as_slice();
    runtime.warm(wasm).unwrap();

    c.bench_function("load dotenv from a warm cache", |b| {
        b.iter(|| runtime.load("dotenv", wasm).unwrap())
    });

    let step = runtime.builtin("dotenv").unwrap();
    c.bench_function("instantiate + empty call", |b| {
        b.iter(|| {
            runtime
                .call(&step, &Limits::default(), async |_, _| Ok(()))
                .unwrap()
        })
    });

    let text = b"IMAGE=registry.gitlab.com/group/app:0a1b2c3d-1234-5678\nENVIRONMENT=production\n"
        .to_vec();
    let env = Vec::new();
    c.bench_function("instantiate + dotenv parse (2 lines)", |b| {
        b.iter(|| {
            dotenv::parse(&runtime, &text, Flavor::Gitlab, &env)
                .unwrap()
                .unwrap()
        })
    });
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
