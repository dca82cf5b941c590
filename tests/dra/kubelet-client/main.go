// kubelet-client: the kubelet's side of the plugin gRPC, for tests.  It
// uses the kubelet's own generated stubs (k8s.io/kubelet, the version
// pinned in go.mod) and grpc-go, as the kubelet does, and prints each
// answer as one line of JSON.
//
//	kubelet-client info REG_SOCK
//	kubelet-client notify REG_SOCK true|false [ERROR]
//	kubelet-client prepare DRA_SOCK NS/NAME/UID...
//	kubelet-client unprepare DRA_SOCK NS/NAME/UID...
//	kubelet-client raw SOCK METHOD HEX     (send raw bytes as a request)
//	kubelet-client bench DRA_SOCK N NS/NAME/UID
//	    N times: unprepare, prepare (the plugin reads the claim), prepare
//	    again (from its checkpoint); prints the latencies' p50 and p99.
//	kubelet-client bench-claims DRA_SOCK cycle|keep NS/NAME/UID...
//	    a call per claim: prepare (the plugin reads it from the API
//	    server), then prepare again (from its checkpoint); with cycle,
//	    each claim is unprepared before the next, with keep the claims
//	    are all prepared first, then all again, and left prepared.
//	    Prints the latencies' p50, p99 and largest.
//
// Exits 1 with the gRPC status on stderr when a call fails.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	drav1 "k8s.io/kubelet/pkg/apis/dra/v1"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// rawCodec sends and receives bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kubelet-client: "+format+"\n", args...)
	os.Exit(1)
}

func claims(args []string) []*drav1.Claim {
	var out []*drav1.Claim
	for _, a := range args {
		p := strings.SplitN(a, "/", 3)
		if len(p) != 3 {
			die("%q: want NS/NAME/UID", a)
		}
		out = append(out, &drav1.Claim{Namespace: p[0], Name: p[1], Uid: p[2]})
	}
	return out
}

// pct: the p-quantile of v (sorts v).
func pct(v []float64, p float64) float64 {
	sort.Float64s(v)
	return v[int(p*float64(len(v)-1))]
}

func show(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		die("%v", err)
	}
	fmt.Println(string(b))
}

func main() {
	if len(os.Args) < 3 {
		die("usage: kubelet-client info|notify|prepare|unprepare|raw SOCK ...")
	}
	encoding.RegisterCodec(rawCodec{})
	conn, err := grpc.NewClient("unix:"+os.Args[2], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		die("%v", err)
	}
	defer conn.Close()
	limit := 45 * time.Second
	if strings.HasPrefix(os.Args[1], "bench") {
		limit = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	fail := func(err error) {
		s, _ := status.FromError(err)
		die("%s: %s", s.Code(), s.Message())
	}
	args := os.Args[3:]
	switch os.Args[1] {
	case "info":
		r, err := registration.NewRegistrationClient(conn).GetInfo(ctx, &registration.InfoRequest{})
		if err != nil {
			fail(err)
		}
		show(map[string]any{"type": r.Type, "name": r.Name, "endpoint": r.Endpoint, "versions": r.SupportedVersions})
	case "notify":
		if len(args) < 1 {
			die("notify: true|false [ERROR]")
		}
		st := &registration.RegistrationStatus{PluginRegistered: args[0] == "true"}
		if len(args) > 1 {
			st.Error = args[1]
		}
		if _, err := registration.NewRegistrationClient(conn).NotifyRegistrationStatus(ctx, st); err != nil {
			fail(err)
		}
		show(map[string]any{"ok": true})
	case "prepare":
		r, err := drav1.NewDRAPluginClient(conn).NodePrepareResources(ctx, &drav1.NodePrepareResourcesRequest{Claims: claims(args)})
		if err != nil {
			fail(err)
		}
		out := map[string]any{}
		for uid, c := range r.Claims {
			var devs []map[string]any
			for _, d := range c.Devices {
				devs = append(devs, map[string]any{"requests": d.RequestNames, "pool": d.PoolName, "device": d.DeviceName, "cdi": d.CdiDeviceIds})
			}
			out[uid] = map[string]any{"devices": devs, "error": c.Error}
		}
		show(out)
	case "unprepare":
		r, err := drav1.NewDRAPluginClient(conn).NodeUnprepareResources(ctx, &drav1.NodeUnprepareResourcesRequest{Claims: claims(args)})
		if err != nil {
			fail(err)
		}
		out := map[string]any{}
		for uid, c := range r.Claims {
			out[uid] = map[string]any{"error": c.Error}
		}
		show(out)
	case "raw":
		if len(args) != 2 {
			die("raw: METHOD HEX")
		}
		in, err := hex.DecodeString(args[1])
		if err != nil {
			die("%v", err)
		}
		var resp []byte
		if err := conn.Invoke(ctx, args[0], &in, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
			fail(err)
		}
		show(map[string]any{"bytes": len(resp)})
	case "bench":
		if len(args) != 2 {
			die("bench: N NS/NAME/UID")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 {
			die("bench: N must be a positive number")
		}
		c := drav1.NewDRAPluginClient(conn)
		cl := claims(args[1:])
		var fresh, again []float64
		call := func() float64 {
			t := time.Now()
			r, err := c.NodePrepareResources(ctx, &drav1.NodePrepareResourcesRequest{Claims: cl})
			if err != nil {
				fail(err)
			}
			if e := r.Claims[cl[0].Uid].GetError(); e != "" {
				die("prepare: %s", e)
			}
			return float64(time.Since(t).Microseconds()) / 1000
		}
		for i := 0; i < n; i++ {
			if _, err := c.NodeUnprepareResources(ctx, &drav1.NodeUnprepareResourcesRequest{Claims: cl}); err != nil {
				fail(err)
			}
			fresh = append(fresh, call())
			again = append(again, call())
		}
		show(map[string]any{"n": n, "read_p50_ms": pct(fresh, 0.5), "read_p99_ms": pct(fresh, 0.99),
			"known_p50_ms": pct(again, 0.5), "known_p99_ms": pct(again, 0.99)})
	case "bench-claims":
		if len(args) < 3 || (args[0] != "cycle" && args[0] != "keep") {
			die("bench-claims: cycle|keep NS/NAME/UID... (at least two)")
		}
		c := drav1.NewDRAPluginClient(conn)
		cl := claims(args[1:])
		call := func(one *drav1.Claim) float64 {
			t := time.Now()
			r, err := c.NodePrepareResources(ctx, &drav1.NodePrepareResourcesRequest{Claims: []*drav1.Claim{one}})
			if err != nil {
				fail(err)
			}
			if e := r.Claims[one.Uid].GetError(); e != "" {
				die("prepare %s/%s: %s", one.Namespace, one.Name, e)
			}
			return float64(time.Since(t).Microseconds()) / 1000
		}
		var fresh, again []float64
		for _, one := range cl {
			fresh = append(fresh, call(one))
			if args[0] == "cycle" {
				again = append(again, call(one))
				r, err := c.NodeUnprepareResources(ctx, &drav1.NodeUnprepareResourcesRequest{Claims: []*drav1.Claim{one}})
				if err != nil {
					fail(err)
				}
				if e := r.Claims[one.Uid].GetError(); e != "" {
					die("unprepare %s/%s: %s", one.Namespace, one.Name, e)
				}
			}
		}
		if args[0] == "keep" {
			for _, one := range cl {
				again = append(again, call(one))
			}
		}
		show(map[string]any{"n": len(cl), "new_p50_ms": pct(fresh, 0.5), "new_p99_ms": pct(fresh, 0.99),
			"new_max_ms": pct(fresh, 1), "again_p50_ms": pct(again, 0.5), "again_p99_ms": pct(again, 0.99),
			"again_max_ms": pct(again, 1)})
	default:
		die("unknown command %q", os.Args[1])
	}
}
