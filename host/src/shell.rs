//! The command line's side of the deploy engine's events: [`Shell`] renders them as plain log
//! lines, as GitLab collapsible sections, or as JSON lines for machines, and prints
//! [`DeployError`]s. Every byte goes through [`crate::output`] (masking). It also opens and
//! closes the checks of `--report junit=FILE` (render, apply, rollout: [`crate::report`]).
//!
//! Two rules shape the rendering. A section GitLab shows collapsed hides its warnings, and
//! GitLab fixes collapsed-ness when the section starts: so the render section is held back
//! until it ends, and starts expanded when it has warnings. And stdout stays empty when
//! nothing could be applied: the apply header is printed once the server's dry run has
//! accepted the objects, not before (the kubeconfig line, printed first, goes to stderr).

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::deploy::DeployError;
use crate::deploy::apply::{self, Applied};
use crate::deploy::events::{DeleteReason, Event, Reporter};
use crate::deploy::job::{Deployed, files_label};
use crate::deploy::log::{self, Sections};
use crate::deploy::objects::Object;
use crate::output;
use crate::report::{self, Outcome};
use crate::steps::manifest::{Report, Variables};

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Log lines; sections as `==> header` lines, or GitLab section markers inside GitLab CI.
    Log(Sections),
    /// One JSON object per event on stdout (`{"event": "applied", …}`).
    Json,
}

/// A line held back while a section is buffered.
enum Held {
    Out(String),
    Err(String),
}

#[derive(Default)]
struct State {
    /// The render section's header and lines while it is held back.
    render: Option<(String, Vec<Held>, bool)>,
    /// The apply section's header until the dry run passed.
    apply_header: Option<String>,
    apply_open: bool,
    /// A check of the reports (render, apply, rollout) this shell started and has not ended:
    /// one that failed stays open until [`Shell::error`] says why.
    case: bool,
}

/// Renders engine events and errors.
pub struct Shell {
    style: Style,
    state: Mutex<State>,
}

impl Shell {
    /// Log lines (GitLab sections inside GitLab CI), or JSON lines when `json`.
    pub fn new(json: bool) -> Self {
        Self::with_style(if json {
            Style::Json
        } else {
            Style::Log(Sections::from_env())
        })
    }

    /// A shell of the given style.
    pub fn with_style(style: Style) -> Self {
        Self {
            style,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Prints `error`: an `error: …` headline and its detail lines on stderr (and, for JSON, an
    /// `error` event on stdout).
    pub fn error(&self, error: &DeployError) {
        let headline = error.headline();
        let details = error.details();
        if let Some(h) = &headline {
            output::stderr_line(&format!("error: {h}"));
        }
        for line in &details {
            output::stderr_line(line);
        }
        if std::mem::take(&mut self.state().case) {
            let why: Vec<&str> = headline
                .iter()
                .map(String::as_str)
                .chain(details.iter().map(String::as_str))
                .collect();
            report::end(Outcome::Failed(why.join("\n")));
        }
        if self.style == Style::Json {
            json_line(&json!({
                "event": "error",
                "exit_code": error.failure().exit_code(),
                "message": headline,
                "details": details,
            }));
        }
    }

    /// A command's closing line: `text` for people, or the `summary` event for machines.
    pub fn outcome(&self, text: &str, summary: Value) {
        if self.style == Style::Json {
            let mut event = json!({"event": "summary"});
            if let (Some(event), Value::Object(fields)) = (event.as_object_mut(), summary) {
                event.extend(fields);
            }
            json_line(&event);
        } else {
            output::stdout(&format!("{text}\n"));
        }
    }

    /// The closing summary of `kstep deploy`.
    pub fn deploy_summary(&self, deployed: &Deployed, dry_run: bool) {
        let run = &deployed.run;
        if self.style == Style::Json {
            json_line(&json!({
                "event": "summary",
                "dry_run": dry_run,
                "namespace": deployed.namespace,
                "server": deployed.server,
                "objects": run.applied.len(),
                "outcomes": apply::summary(&run.applied),
                "apply_seconds": run.apply_time.as_secs_f64(),
                "images": deployed.images,
                "rolled_out": run.rollouts.len(),
                "rollout_seconds": run.rollout_time.map(|t| t.as_secs_f64()),
            }));
            return;
        }
        let mut text = String::from(if dry_run {
            "Summary (dry run: nothing was changed)\n"
        } else {
            "Summary\n"
        });
        text.push_str(&format!(
            "  namespace  {} on {}\n",
            deployed.namespace, deployed.server
        ));
        text.push_str(&format!(
            "  objects    {} ({}) in {}\n",
            run.applied.len(),
            apply::summary(&run.applied),
            log::seconds(run.apply_time)
        ));
        match deployed.images.as_slice() {
            [] => {}
            [one] => text.push_str(&format!("  image      {one}\n")),
            many => text.push_str(&format!("  images     {}\n", many.join(", "))),
        }
        match run.rollout_time {
            Some(t) => text.push_str(&format!(
                "  rollout    {} workload(s) rolled out in {}\n",
                run.rollouts.len(),
                log::seconds(t)
            )),
            None if !dry_run => text.push_str("  rollout    not waited for (--no-wait)\n"),
            None => {}
        }
        output::stdout(&text);
    }

    fn out(&self, state: &mut State, text: String) {
        match &mut state.render {
            Some((_, held, _)) => held.push(Held::Out(text)),
            None => output::stdout(&format!("{text}\n")),
        }
    }

    /// Opens and closes the checks of the reports: render, apply and rollout, each passed
    /// when its end says so (a failed one is closed by [`Shell::error`]). Inside a pipeline
    /// step, the step is the check.
    fn report_checks(&self, event: &Event<'_>) {
        let mut state = self.state();
        let start = match event {
            Event::RenderStarted { .. } => Some("render"),
            Event::ApplyStarted { .. } => Some("apply"),
            Event::RolloutStarted { .. } => Some("rollout"),
            _ => None,
        };
        if let Some(name) = start {
            if !state.case {
                state.case = report::start(name);
            }
            return;
        }
        let passed = match event {
            Event::Rendered { .. }
            | Event::ApplyEnded {
                applied: Some(_), ..
            } => true,
            Event::RolloutEnded(result) => result.is_some(),
            _ => false,
        };
        if passed && std::mem::take(&mut state.case) {
            report::end(Outcome::Passed);
        }
    }

    fn log_event(&self, sections: Sections, event: Event<'_>) {
        let mut state = self.state();
        match event {
            // On stderr, as the kubeconfig's own warnings that follow it: the line comes before
            // anything is known to be applicable, and stdout stays empty when nothing is.
            Event::Kubeconfig(credentials) => output::stderr_line(&credentials.in_use()),
            Event::Warning(text) => match &mut state.render {
                Some((_, held, problems)) => {
                    held.push(Held::Err(text.to_owned()));
                    *problems = true;
                }
                None => output::stderr_line(text),
            },
            Event::RenderStarted { files, images } => {
                state.render = Some((
                    format!(
                        "Rendering {} ({images} image override(s))",
                        files_label(files)
                    ),
                    Vec::new(),
                    false,
                ));
            }
            Event::Rendered {
                objects,
                report,
                variables,
            } => {
                for line in render_lines(objects, report, variables) {
                    self.out(&mut state, line);
                }
            }
            Event::RenderEnded => {
                if let Some((header, held, problems)) = state.render.take() {
                    sections.start("kstep_render", &header, !problems);
                    for line in held {
                        match line {
                            Held::Out(text) => output::stdout(&format!("{text}\n")),
                            Held::Err(text) => output::stderr_line(&text),
                        }
                    }
                    sections.end("kstep_render");
                }
            }
            Event::ApplyStarted {
                objects,
                namespace,
                server,
                context,
                field_manager,
                dry_run,
            } => {
                let verb = if dry_run { "Dry run of" } else { "Applying" };
                state.apply_header = Some(format!(
                    "{verb} {objects} object(s) in namespace {namespace} on {server} \
                     (context {context}, field manager {field_manager})"
                ));
            }
            Event::DryRunAccepted { accepted, deferred } => {
                if let Some(header) = state.apply_header.take() {
                    sections.start("kstep_apply", &header, false);
                    state.apply_open = true;
                }
                let mut line =
                    format!("  dry run: {accepted} object(s) accepted (strict field validation)");
                if deferred > 0 {
                    line.push_str(&format!(
                        "; {deferred} validated once the CRDs/Namespaces they need are applied"
                    ));
                }
                self.out(&mut state, line);
            }
            Event::ObjectApplied {
                applied,
                default_namespace,
                dry_run,
            } => {
                output::stdout(&apply::line(applied, default_namespace, dry_run));
            }
            Event::Adopted {
                object,
                managers,
                helm_release,
                field_manager,
                dry_run,
            } => {
                let (verb, removed) = if dry_run {
                    ("would take", "would be removed")
                } else {
                    ("took", "removed")
                };
                let helm = helm_release.map_or(String::new(), |r| {
                    format!("; the label and annotations of Helm release {r} {removed}")
                });
                output::stdout(&format!(
                    "  {:<12} {}: {verb} over the fields of {} for field manager {field_manager}{helm}\n",
                    "adopted",
                    object.display_name(),
                    managers.join(", "),
                ));
            }
            Event::ObjectDeferred { object, needs } => {
                output::stdout(&format!(
                    "  {:<12} {} (needs {needs} of this run: validated when applied)\n",
                    "created",
                    object.display_name(),
                ));
            }
            Event::ApplyEnded { applied, dry_run } => {
                state.apply_header = None;
                if let Some((applied, elapsed)) = applied {
                    let what = if dry_run {
                        "Dry run passed for"
                    } else {
                        "Applied"
                    };
                    output::stdout(&format!(
                        "{what} {} object(s) in {}: {}\n",
                        applied.len(),
                        log::seconds(elapsed),
                        apply::summary(applied)
                    ));
                }
                if std::mem::take(&mut state.apply_open) {
                    sections.end("kstep_apply");
                }
            }
            Event::NothingToWaitFor => {
                output::stdout("No Deployment, StatefulSet, DaemonSet or Job to wait for\n");
            }
            Event::RolloutStarted {
                workloads,
                timeout,
                failure_grace,
            } => sections.start(
                "kstep_rollout",
                &format!(
                    "Waiting for {workloads} workload(s) to roll out (timeout {}, failure grace {})",
                    log::seconds(timeout),
                    log::seconds(failure_grace)
                ),
                false,
            ),
            Event::RolloutProgress { workload, message } => {
                output::stdout(&format!("  {workload}: {message}\n"));
            }
            Event::RolloutDone(finished) => output::stdout(&format!(
                "  {}: {} in {}\n",
                finished.workload,
                finished.message,
                log::seconds(finished.elapsed)
            )),
            Event::RolloutEnded(result) => {
                sections.end("kstep_rollout");
                if let Some((count, elapsed)) = result {
                    output::stdout(&format!(
                        "Rolled out {count} workload(s) in {}\n",
                        log::seconds(elapsed)
                    ));
                }
            }
            Event::DeleteStarted {
                set,
                members,
                reason,
                dry_run,
            } => {
                let what = match (reason, dry_run) {
                    (DeleteReason::Prune, false) => "Pruning",
                    (DeleteReason::Prune, true) => "Dry run: would prune",
                    (DeleteReason::Teardown, false) => "Deleting",
                    (DeleteReason::Teardown, true) => "Dry run: would delete",
                };
                let why = match reason {
                    DeleteReason::Prune => "member(s) no longer applied",
                    DeleteReason::Teardown => "member(s)",
                };
                // The whole list first: nothing is deleted before it is on the log.
                sections.start(
                    "kstep_delete",
                    &format!("{what} {} {why} of ApplySet {set}:", members.len()),
                    false,
                );
                let list: String = members.iter().map(|m| format!("  - {m}\n")).collect();
                output::stdout(&list);
            }
            Event::Deleted { member, dry_run } => output::stdout(&format!(
                "  {:<12} {member}\n",
                if dry_run { "would delete" } else { "deleted" }
            )),
            Event::DeleteEnded { deleted, dry_run } => {
                sections.end("kstep_delete");
                if let Some(n) = deleted {
                    output::stdout(&format!(
                        "{} {n} object(s)\n",
                        if dry_run { "Would delete" } else { "Deleted" }
                    ));
                }
            }
            Event::AdoptedIntoSet {
                object,
                set,
                dry_run,
            } => output::stdout(&format!(
                "  {:<12} {} {} ApplySet {set}: it existed outside any set\n",
                "adopted",
                object.display_name(),
                if dry_run { "would join" } else { "joins" },
            )),
            Event::RevisionRecorded { set, info } => output::stdout(&format!(
                "Recorded revision {} of ApplySet {set} ({}{})\n",
                info.revision,
                info.result,
                if info.objects_dropped {
                    "; too large to keep its objects: it cannot be rolled back to"
                } else {
                    ""
                }
            )),
            Event::RollbackStarted { set, revision } => sections.start(
                "kstep_rollback",
                &format!("Rolling ApplySet {set} back to revision {revision}"),
                false,
            ),
            Event::RollbackEnded { revision, ok } => {
                sections.end("kstep_rollback");
                output::stdout(&if ok {
                    format!("Rolled back to revision {revision}\n")
                } else {
                    format!("The rollback to revision {revision} failed\n")
                });
            }
            Event::PlanMatched { path, objects } => output::stdout(&format!(
                "Plan {} matches: {objects} object(s) as reviewed\n",
                path.display()
            )),
            Event::DotenvWritten {
                path,
                names,
                left_out,
            } => {
                output::stdout(&format!(
                    "Wrote {} ({})\n",
                    path.display(),
                    names.join(", ")
                ));
                for why in left_out {
                    output::stdout(&format!("  not written: {why}\n"));
                }
            }
        }
    }
}

impl Reporter for Shell {
    fn report(&self, event: Event<'_>) {
        self.report_checks(&event);
        match self.style {
            Style::Log(sections) => self.log_event(sections, event),
            Style::Json => json_line(&event_json(&event)),
        }
    }
}

fn json_line(value: &Value) {
    output::stdout(&format!("{value}\n"));
}

fn applied_json(a: &Applied, dry_run: bool) -> Value {
    json!({
        "event": "applied",
        "object": a.object.display_name(),
        "namespace": a.object.target_namespace(),
        "source": a.object.origin.to_string(),
        "outcome": a.outcome.to_string(),
        "dry_run": dry_run,
    })
}

/// One event as a JSON object; `event` names it.
fn event_json(event: &Event<'_>) -> Value {
    match event {
        Event::Kubeconfig(c) => json!({
            "event": "kubeconfig",
            "source": c.source.describe(),
            "context": c.connection.context,
            "server": c.connection.server,
        }),
        Event::Warning(text) => json!({"event": "warning", "message": text}),
        Event::RenderStarted { files, images } => json!({
            "event": "render_started",
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "images": images,
        }),
        Event::Rendered {
            objects, report, ..
        } => json!({
            "event": "rendered",
            "objects": objects.iter().map(|o| json!({
                "object": o.display_name(),
                "source": o.origin.to_string(),
            })).collect::<Vec<_>>(),
            "substitutions": report.substitutions.len(),
            "image_changes": report.images.len(),
        }),
        Event::RenderEnded => json!({"event": "render_ended"}),
        Event::ApplyStarted {
            objects,
            namespace,
            server,
            context,
            field_manager,
            dry_run,
        } => json!({
            "event": "apply_started",
            "objects": objects,
            "namespace": namespace,
            "server": server,
            "context": context,
            "field_manager": field_manager,
            "dry_run": dry_run,
        }),
        Event::DryRunAccepted { accepted, deferred } => {
            json!({"event": "dry_run_accepted", "accepted": accepted, "deferred": deferred})
        }
        Event::ObjectApplied {
            applied, dry_run, ..
        } => applied_json(applied, *dry_run),
        Event::Adopted {
            object,
            managers,
            helm_release,
            field_manager,
            dry_run,
        } => json!({
            "event": "adopted",
            "object": object.display_name(),
            "namespace": object.target_namespace(),
            "from": managers,
            "helm_release": helm_release,
            "field_manager": field_manager,
            "dry_run": dry_run,
        }),
        Event::ObjectDeferred { object, needs } => json!({
            "event": "deferred",
            "object": object.display_name(),
            "needs": needs,
        }),
        Event::ApplyEnded { applied, dry_run } => json!({
            "event": "apply_ended",
            "ok": applied.is_some(),
            "dry_run": dry_run,
            "objects": applied.map(|(a, _)| a.len()),
            "seconds": applied.map(|(_, t)| t.as_secs_f64()),
        }),
        Event::NothingToWaitFor => json!({"event": "nothing_to_wait_for"}),
        Event::RolloutStarted {
            workloads,
            timeout,
            failure_grace,
        } => json!({
            "event": "rollout_started",
            "workloads": workloads,
            "timeout_seconds": timeout.as_secs_f64(),
            "failure_grace_seconds": failure_grace.as_secs_f64(),
        }),
        Event::RolloutProgress { workload, message } => json!({
            "event": "rollout_progress",
            "workload": workload.to_string(),
            "message": message,
        }),
        Event::RolloutDone(f) => json!({
            "event": "rolled_out",
            "workload": f.workload.to_string(),
            "message": f.message,
            "seconds": f.elapsed.as_secs_f64(),
        }),
        Event::RolloutEnded(result) => json!({
            "event": "rollout_ended",
            "ok": result.is_some(),
            "workloads": result.map(|(n, _)| n),
            "seconds": result.map(|(_, t)| t.as_secs_f64()),
        }),
        Event::DeleteStarted {
            set,
            members,
            reason,
            dry_run,
        } => json!({
            "event": "delete_started",
            "applyset": set,
            "reason": reason.as_str(),
            "dry_run": dry_run,
            "objects": members.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        Event::Deleted { member, dry_run } => json!({
            "event": "deleted",
            "object": member.display_name(),
            "namespace": member.namespace,
            "dry_run": dry_run,
        }),
        Event::DeleteEnded { deleted, dry_run } => json!({
            "event": "delete_ended",
            "ok": deleted.is_some(),
            "objects": deleted,
            "dry_run": dry_run,
        }),
        Event::AdoptedIntoSet {
            object,
            set,
            dry_run,
        } => json!({
            "event": "adopted_into_set",
            "object": object.display_name(),
            "applyset": set,
            "dry_run": dry_run,
        }),
        Event::RevisionRecorded { set, info } => json!({
            "event": "revision_recorded",
            "applyset": set,
            "revision": info,
        }),
        Event::RollbackStarted { set, revision } => json!({
            "event": "rollback_started",
            "applyset": set,
            "revision": revision,
        }),
        Event::RollbackEnded { revision, ok } => json!({
            "event": "rollback_ended",
            "revision": revision,
            "ok": ok,
        }),
        Event::PlanMatched { path, objects } => json!({
            "event": "plan_matched",
            "path": path.display().to_string(),
            "objects": objects,
        }),
        Event::DotenvWritten {
            path,
            names,
            left_out,
        } => json!({
            "event": "dotenv_written",
            "path": path.display().to_string(),
            "variables": names,
            "leftOut": left_out,
        }),
    }
}

/// What the render did, for the render section: variables used (names and origins, never
/// values), image changes, apiVersion upgrades, and the objects.
fn render_lines(objects: &[Object], report: &Report, variables: &Variables) -> Vec<String> {
    let mut lines = Vec::new();
    let mut used: Vec<&str> = report
        .substitutions
        .iter()
        .map(|s| s.variable.as_str())
        .collect();
    used.sort_unstable();
    used.dedup();
    for name in used {
        let origin = variables
            .origin(name)
            .map_or_else(|| "its default".to_owned(), ToString::to_string);
        lines.push(format!("  ${{{name}}} from {origin}"));
    }
    for c in &report.images {
        lines.push(format!(
            "  {}:{}:{}: {}/{} container {}: image {} -> {}",
            c.source,
            c.line,
            c.column,
            c.kind.to_ascii_lowercase(),
            c.name,
            c.container,
            if c.old_image.is_empty() {
                "(none)"
            } else {
                &c.old_image
            },
            c.new_image
        ));
    }
    for a in report.api_versions.iter().filter(|a| a.upgraded) {
        lines.push(format!(
            "  {}:{}:{}: {} {}: {} -> {}",
            a.source,
            a.line,
            a.column,
            a.kind,
            a.name,
            a.old_api_version,
            a.new_api_version.as_deref().unwrap_or("-")
        ));
    }
    for o in objects {
        lines.push(format!("  {}  ({})", o.display_name(), o.origin));
    }
    lines
}
