// Command compose-oracle runs compose-go's real dotenv parser on a fixed set of inputs (hand-
// picked edge cases plus deterministic pseudo-random ones) and writes the results as test data
// for kstep's compose flavor: ../../tests/compose_vectors.json, read by ../../tests/conformance.rs.
// kstep must give the same variables (compared as maps: Go maps have no order) and fail on the
// same inputs, with the same kind of error.
//
// The file is JSON with one case per line: {"input": …, "vars": {name: value…}} or
// {"input": …, "error": kind}. Strings are escaped by hand so that invisible characters (C0/C1
// controls, U+2028, U+FEFF) show as \uXXXX escapes in review.
//
// Run: go run . > ../../tests/compose_vectors.json
package main

import (
	"fmt"
	"math/rand"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
)

// The environment every case is parsed with.
var environment = map[string]string{"A": "a", "E": "", "SP": "x y"}

var handPicked = []string{
	"", "\n", "A=1", "A=1\n\n", "A", "A\n", "export", "export ", "export\n", "export A", "export A\n",
	"A B=1", "A\tB=1", "A\vB=1", "A=b #c", "A=b\t#c", "A= #c", "A=#c", "A=\"x\" # c", "A=\"x\"B=1",
	"A='x'junk\n", "A=\"x\"junk", "A=\"\\$A\"", "A=\"$$A\"", "A=$$A", "A='$A'", "A=${A}", "A=${E:-d}",
	"A=${E-d}", "A=${U?}", "A=${E?}", "A=${E:?}", "A=${A:+alt}", "A=${E:+alt}", "A=${E+alt}",
	"A=${U+alt}", "A=${", "A=${}", "A=${ A}", "A=${A }", "A=${A!}", "A=$1", "A=$", "A=$}",
	"X=${U:-${A}}", "X=${U:-${U2:-z}}", "X=${U:-{}}", "X=${U:-}}", "X=${U:-x} and ${A}", "X=${U:-a\nb}",
	"X=\"${U:-a\nb}\"", "X=\"\\0101\"", "X=\"\\0\"", "X=\"\\01\"", "X=\"\\0400\"", "X=\"\\0377\"",
	"X=\"\\c\"", "X=\"\\x41\"", "X=\"a\\\\\"", "X='a\\\\'", "X='a\\'b'", "X=\"a\\\"b\"", "X=\"\\$\\{A}\"",
	"A:1", "A: 1", "A : 1", "a.b[0]-c=1", "é=1", "\u0663=1", "\u212a=1", "X=$\u212a", "X=$\u017f",
	"%=1", "A%=1", "#=1", "A#=1", "A=1\r\nB=2\r\n", "A\r\n", "\ufeffA=1", "\u00a0A=1", "A\u00a0=1",
	"A=1\u00a0", "A=1\u0085", "A=\u2028x", "\u2028A=1", "A=\"multi\nline\"\nB=$A", "B=$A\nA=2\nC=$A",
	"SP=1\nX=$SP", "X=${A}${A}${A}", "X=$A$A", "X=$A_B", "X=${A}_B", "X=${A:-${E:-${U:-deep}}}",
	"X=${A:?${U:?inner}}", "X=${U:?${U2:?inner}}", "X=${U:-$$}", "X=${U:-\\}}", "X=\"${U:-\\}}\"",
	"K=v # c\nK2=\"q\" # c\n# full\n  # indented\nK3='s'", "=v", "=\"v\"", " = v", "A==", "A=:", "A:=",
	"export=1", "exportA=1", "export  export A=1", "export\texport=1", "X=\"\\a\\b\\f\\n\\r\\t\\v\"",
	"X='\\a\\b'", "X=\"a$\"", "X=\"$\"", "X=\"${A}\"x", "X=a\\ b", "X=\"\n\"", "X='\n'", "X=''", "X=\"\"",
}

var fragments = []string{
	"A", "B", "E", "U", "x", "0", "é", "_", ".", "-", "=", ":", "\"", "'", "\\", "$", "{", "}",
	"#", " ", " ", "\t", "\n", "\n", "\r\n", "export ", "?", "+", ":-", "${A}", "${U:-d}", "$A",
	"${E:+z}", "\\n", "\\$", "$$", "\u00a0", "[", "]",
}

var keys = []string{"A", "B", "U", "x", "é", "a.b", "A_1", "A-B", "", "A B", "A\t", "1", "export A", "export", "  A", "#A"}
var seps = []string{"=", "=", "=", ":", " = ", "\n", "= "}
var values = []string{
	"v", "v w", "\"", "'", "\\", "$", "${", "}", "{", "#", " #", " ", "\t", "\n", "\r", "$A", "$U", "$$", "${A}",
	"${U:-d}", "${E-d}", "${E:?m}", "${U?m}", "${A:+p}", "${U+p}", "\\n", "\\$", "\\\"", "\\'", "\\0101", "é", ":", "=",
	"${U:-${A}}", "${A:-{x}}", "-", "?", "+",
}

// statement builds one plausible statement, or soup of fragments now and then.
func statement(rng *rand.Rand) string {
	var b strings.Builder
	if rng.Intn(10) == 0 {
		for j, n := 0, 1+rng.Intn(8); j < n; j++ {
			b.WriteString(fragments[rng.Intn(len(fragments))])
		}
		return b.String()
	}
	b.WriteString(keys[rng.Intn(len(keys))])
	b.WriteString(seps[rng.Intn(len(seps))])
	quote := []string{"", "", "\"", "'"}[rng.Intn(4)]
	b.WriteString(quote)
	for j, n := 0, rng.Intn(5); j < n; j++ {
		b.WriteString(values[rng.Intn(len(values))])
	}
	if rng.Intn(5) != 0 {
		b.WriteString(quote)
	}
	return b.String()
}

func main() {
	cases := append([]string{}, handPicked...)
	rng := rand.New(rand.NewSource(20240501))
	for i := 0; i < 1500; i++ {
		parts := make([]string, 1+rng.Intn(4))
		for j := range parts {
			parts[j] = statement(rng)
		}
		cases = append(cases, strings.Join(parts, []string{"\n", "\n", "\r\n", "\n\n", ""}[rng.Intn(5)]))
	}
	lookup := func(k string) (string, bool) {
		v, ok := environment[k]
		return v, ok
	}
	fmt.Println("{")
	fmt.Printf("  \"generator\": %s,\n", lit("conformance/compose-oracle: "+composeGo()+" dotenv.ParseWithLookup"))
	keys := make([]string, 0, len(environment))
	for k := range environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, fmt.Sprintf("%s: %s", lit(k), lit(environment[k])))
	}
	fmt.Printf("  \"environment\": {%s},\n", strings.Join(env, ", "))
	fmt.Println("  \"cases\": [")
	for i, c := range cases {
		sep := ","
		if i == len(cases)-1 {
			sep = ""
		}
		vars, err := dotenv.ParseWithLookup(strings.NewReader(c), lookup)
		if err != nil {
			fmt.Printf("    {\"input\": %s, \"error\": %s}%s\n", lit(c), lit(kind(err.Error())), sep)
			continue
		}
		names := make([]string, 0, len(vars))
		for k := range vars {
			names = append(names, k)
		}
		sort.Strings(names)
		parts := make([]string, 0, len(names))
		for _, k := range names {
			parts = append(parts, fmt.Sprintf("%s: %s", lit(k), lit(vars[k])))
		}
		fmt.Printf("    {\"input\": %s, \"vars\": {%s}}%s\n", lit(c), strings.Join(parts, ", "), sep)
	}
	fmt.Println("  ]")
	fmt.Println("}")
}

// composeGo names the compose-go module and version this program was built with.
func composeGo() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/compose-spec/compose-go/v2" {
				return dep.Path + " " + dep.Version
			}
		}
	}
	return "github.com/compose-spec/compose-go/v2"
}

// kind reduces compose-go's error message to what kstep must agree on.
func kind(msg string) string {
	for _, k := range []struct{ needle, kind string }{
		{"unterminated quoted value", "unterminated"},
		{"unexpected character", "unexpected-character"},
		{"key cannot contain a space", "key-space"},
		{"Invalid template", "invalid-template"},
		{"required variable", "required"},
		{"zero length string", "zero-length"},
	} {
		if strings.Contains(msg, k.needle) {
			return k.kind
		}
	}
	return "other: " + msg
}

// lit writes s as a JSON string.
func lit(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
