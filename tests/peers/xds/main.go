// Command xds-server is a test peer for metaproxy's xDS client: an xDS
// control plane built on go-control-plane, driven by JSON lines on stdin and
// reporting what its clients do as JSON lines on stdout. See README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	sotw "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

const maxMsgSize = 64 << 20

func logf(level string) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "xds-server: "+level+": "+format+"\n", args...)
	}
}

// logger sends go-control-plane's messages to stderr; debug ones only when
// XDS_SERVER_DEBUG is set.
func logger() log.Logger {
	l := log.LoggerFuncs{InfoFunc: logf("info"), WarnFunc: logf("warn"), ErrorFunc: logf("error")}
	if os.Getenv("XDS_SERVER_DEBUG") != "" {
		l.DebugFunc = logf("debug")
	}
	return l
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "xds-server: "+format+"\n", args...)
	os.Exit(1)
}

// listen binds 127.0.0.1:port ("0": a port the system picks).
func listen(port string) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fatal("listen: %v", err)
	}
	return l
}

// restHandler serves Envoy's REST-JSON transport through go-control-plane's
// HTTP gateway (POST /v3/discovery:listeners, :routes, :clusters, ...).
func restHandler(srv serverv3.Server) http.Handler {
	gw := &serverv3.HTTPGateway{Server: srv}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, code, err := gw.ServeHTTP(r)
		if err != nil {
			http.Error(w, err.Error(), code)
			return
		}
		if body != nil {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(code)
		_, _ = w.Write(body)
	})
}

// grpcPort is XDS_GRPC_PORT when set (a test restarting the server on the
// port its client knows), else "0".
func grpcPort() string {
	if p := os.Getenv("XDS_GRPC_PORT"); p != "" {
		return p
	}
	return "0"
}

func main() {
	if len(os.Args) > 1 {
		fatal("takes no arguments; commands come on stdin (see README.md)")
	}
	ctx := context.Background()
	lg := logger()
	// The standard types come from a SnapshotCache, the thrift_proxy,
	// dubbo_proxy and generic_proxy route types from extraCaches (extra.go),
	// joined by a MuxCache.
	store := newCaches(cachev3.NewSnapshotCache(true, cachev3.IDHash{}, lg))
	// Ordered ADS sends the responses of one ADS stream in a fixed type order
	// (clusters, endpoints, listeners, routes, ...), making test runs repeatable.
	srv := serverv3.NewServer(ctx, store.mux(), callbacks(), sotw.WithOrderedADS(), sotw.WithLogger(lg))

	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMsgSize),
		grpc.MaxSendMsgSize(maxMsgSize),
		// Lenient: clients may ping as often as they like, with or without streams.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Nanosecond, PermitWithoutStream: true}),
	)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(gs, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(gs, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, srv)
	endpointservice.RegisterEndpointDiscoveryServiceServer(gs, srv)
	secretservice.RegisterSecretDiscoveryServiceServer(gs, srv)

	grpcL, restL := listen(grpcPort()), listen("0")
	go func() {
		if err := gs.Serve(grpcL); err != nil {
			fatal("grpc: %v", err)
		}
	}()
	hs := &http.Server{Handler: restHandler(srv), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(restL); err != nil {
			fatal("rest: %v", err)
		}
	}()

	emit(struct {
		Event string `json:"event"`
		GRPC  int    `json:"grpc"`
		Rest  int    `json:"rest"`
	}{"listening", grpcL.Addr().(*net.TCPAddr).Port, restL.Addr().(*net.TCPAddr).Port})

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), maxMsgSize)
	for in.Scan() {
		line := in.Bytes()
		if len(line) == 0 {
			continue
		}
		var cmd struct {
			Op string `json:"op"`
		}
		if err := json.Unmarshal(line, &cmd); err != nil {
			emit(map[string]string{"event": "error", "error": "bad command: " + err.Error()})
			continue
		}
		switch cmd.Op {
		case "snapshot":
			applySnapshot(ctx, store, line)
		case "stop":
			os.Exit(0)
		default:
			emit(map[string]string{"event": "error", "error": fmt.Sprintf("unknown op %q", cmd.Op)})
		}
	}
	if err := in.Err(); err != nil {
		fatal("stdin: %v", err)
	}
}
