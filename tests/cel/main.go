// celref: the reference result of DRA device selectors, for the
// differential test of isthmusd's CEL subset (run.sh).
//
// It compiles and evaluates each case the way kube-scheduler's DRA
// allocator does (k8s.io/dynamic-resource-allocation/cel: a compilation
// cache with the default feature gates of the pinned release, then
// DeviceMatches over one device), reading one JSON object a line,
//
//	{"expr": "...", "driver": "...", "attributes": {...}}
//
// and printing one line for each: the result word, a tab and the message,
// with the words of tests/unit/cel_eval.c:
//
//	true | false | error | compile-error
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	dracel "k8s.io/dynamic-resource-allocation/cel"
)

type testCase struct {
	Expr       string                                                   `json:"expr"`
	Driver     string                                                   `json:"driver"`
	Attributes map[resourceapi.QualifiedName]resourceapi.DeviceAttribute `json:"attributes"`
}

// oneLine keeps a message on its line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func main() {
	// DRAConsumableCapacity is on by default in 1.37, DRAListTypeAttributes
	// is not; the scheduler builds its cache from exactly these two gates.
	cache := dracel.NewCache(100, dracel.Features{EnableConsumableCapacity: true})
	ctx := context.Background()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	line := 0
	for in.Scan() {
		line++
		var c testCase
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintf(os.Stderr, "celref: line %d: %v\n", line, err)
			os.Exit(1)
		}
		expr := cache.GetOrCompile(c.Expr)
		if expr.Error != nil {
			fmt.Fprintf(out, "compile-error\t%s\n", oneLine(expr.Error.Error()))
			continue
		}
		match, _, err := expr.DeviceMatches(ctx, dracel.Device{Driver: c.Driver, Attributes: c.Attributes})
		switch {
		case err != nil:
			fmt.Fprintf(out, "error\t%s\n", oneLine(err.Error()))
		case match:
			fmt.Fprintln(out, "true")
		default:
			fmt.Fprintln(out, "false")
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "celref: %v\n", err)
		os.Exit(1)
	}
}
