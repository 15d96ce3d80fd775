package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// out writes the program's stdout: one JSON object a line, each line in one
// Write call under a mutex, since callbacks run on many goroutines.
var stdoutMu sync.Mutex

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"event": "error", "error": "marshal: " + err.Error()})
	}
	b = append(b, '\n')
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	if _, err := os.Stdout.Write(b); err != nil {
		fmt.Fprintf(os.Stderr, "xds-server: stdout: %v\n", err)
		os.Exit(1)
	}
}

// restStream is the stream id reported for REST-JSON fetches.
const restStream = -1

type openEvent struct {
	Event   string `json:"event"`
	Stream  int64  `json:"stream"`
	TypeURL string `json:"type_url"`
	Delta   bool   `json:"delta,omitempty"`
}

type closeEvent struct {
	Event  string `json:"event"`
	Stream int64  `json:"stream"`
	Delta  bool   `json:"delta,omitempty"`
}

type requestEvent struct {
	Event     string   `json:"event"`
	Stream    int64    `json:"stream"`
	Node      string   `json:"node"`
	TypeURL   string   `json:"type_url"`
	Version   string   `json:"version"`
	Nonce     string   `json:"nonce"`
	Names     []string `json:"names"`
	Error     *string  `json:"error"`
	ErrorCode int32    `json:"error_code"`
	Rest      bool     `json:"rest,omitempty"`
}

type responseEvent struct {
	Event   string   `json:"event"`
	Stream  int64    `json:"stream"`
	TypeURL string   `json:"type_url"`
	Version string   `json:"version"`
	Nonce   string   `json:"nonce"`
	Names   []string `json:"names"`
	Rest    bool     `json:"rest,omitempty"`
}

// Incremental (delta) xDS is served too; its lines use their own event names
// so that a test matching "request"/"response" only sees state-of-the-world.
type deltaRequestEvent struct {
	Event       string   `json:"event"` // "delta_request"
	Stream      int64    `json:"stream"`
	Node        string   `json:"node"`
	TypeURL     string   `json:"type_url"`
	Nonce       string   `json:"nonce"`
	Subscribe   []string `json:"subscribe"`
	Unsubscribe []string `json:"unsubscribe"`
	Error       *string  `json:"error"`
	ErrorCode   int32    `json:"error_code"`
}

type deltaResponseEvent struct {
	Event   string   `json:"event"` // "delta_response"
	Stream  int64    `json:"stream"`
	TypeURL string   `json:"type_url"`
	Version string   `json:"version"`
	Nonce   string   `json:"nonce"`
	Names   []string `json:"names"`
	Removed []string `json:"removed"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// errorDetail gives a request's error_detail as (message, code), or
// (nil, 0) when the request carries none (an ACK or a first request).
func errorDetail(st *rpcstatus.Status) (*string, int32) {
	if st == nil {
		return nil, 0
	}
	msg := st.GetMessage()
	return &msg, st.GetCode()
}

func requestLine(stream int64, req *discovery.DiscoveryRequest, rest bool) requestEvent {
	msg, code := errorDetail(req.GetErrorDetail())
	return requestEvent{
		Event:     "request",
		Stream:    stream,
		Node:      req.GetNode().GetId(),
		TypeURL:   req.GetTypeUrl(),
		Version:   req.GetVersionInfo(),
		Nonce:     req.GetResponseNonce(),
		Names:     nonNil(req.GetResourceNames()),
		Error:     msg,
		ErrorCode: code,
		Rest:      rest,
	}
}

// resourceName decodes one resource of a response to read its name.
func resourceName(a *anypb.Any) string {
	m, err := a.UnmarshalNew()
	if err != nil {
		return ""
	}
	return cachev3.GetResourceName(m)
}

func responseLine(stream int64, resp *discovery.DiscoveryResponse, rest bool) responseEvent {
	names := make([]string, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		names = append(names, resourceName(r))
	}
	return responseEvent{
		Event:   "response",
		Stream:  stream,
		TypeURL: resp.GetTypeUrl(),
		Version: resp.GetVersionInfo(),
		Nonce:   resp.GetNonce(),
		Names:   names,
		Rest:    rest,
	}
}

func callbacks() serverv3.CallbackFuncs {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(_ context.Context, id int64, typeURL string) error {
			emit(openEvent{Event: "open", Stream: id, TypeURL: typeURL})
			return nil
		},
		StreamClosedFunc: func(id int64, _ *core.Node) {
			emit(closeEvent{Event: "close", Stream: id})
		},
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			emit(requestLine(id, req, false))
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			emit(responseLine(id, resp, false))
		},
		FetchRequestFunc: func(_ context.Context, req *discovery.DiscoveryRequest) error {
			emit(requestLine(restStream, req, true))
			return nil
		},
		FetchResponseFunc: func(_ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			if resp != nil {
				emit(responseLine(restStream, resp, true))
			}
		},
		DeltaStreamOpenFunc: func(_ context.Context, id int64, typeURL string) error {
			emit(openEvent{Event: "open", Stream: id, TypeURL: typeURL, Delta: true})
			return nil
		},
		DeltaStreamClosedFunc: func(id int64, _ *core.Node) {
			emit(closeEvent{Event: "close", Stream: id, Delta: true})
		},
		StreamDeltaRequestFunc: func(id int64, req *discovery.DeltaDiscoveryRequest) error {
			msg, code := errorDetail(req.GetErrorDetail())
			emit(deltaRequestEvent{
				Event:       "delta_request",
				Stream:      id,
				Node:        req.GetNode().GetId(),
				TypeURL:     req.GetTypeUrl(),
				Nonce:       req.GetResponseNonce(),
				Subscribe:   nonNil(req.GetResourceNamesSubscribe()),
				Unsubscribe: nonNil(req.GetResourceNamesUnsubscribe()),
				Error:       msg,
				ErrorCode:   code,
			})
			return nil
		},
		StreamDeltaResponseFunc: func(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
			names := make([]string, 0, len(resp.GetResources()))
			for _, r := range resp.GetResources() {
				names = append(names, r.GetName())
			}
			emit(deltaResponseEvent{
				Event:   "delta_response",
				Stream:  id,
				TypeURL: resp.GetTypeUrl(),
				Version: resp.GetSystemVersionInfo(),
				Nonce:   resp.GetNonce(),
				Names:   names,
				Removed: nonNil(resp.GetRemovedResources()),
			})
		},
	}
}
