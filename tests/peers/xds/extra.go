package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs served besides the standard xDS types: Envoy's thrift_proxy TRDS,
// dubbo_proxy DRDS and generic_proxy generic_rds route configurations
// (subscribed by name over ADS).
const (
	thriftRouteType  = "type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.RouteConfiguration"
	dubboRouteType   = "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.MultipleRouteConfiguration"
	genericRouteType = "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.v3.RouteConfiguration"
)

// extraCache serves one resource type that go-control-plane's SnapshotCache
// does not know (NewSnapshot refuses any type URL outside its fixed list).
// Like the snapshot cache it is keyed by node id and versioned by the snapshot
// command's version; it answers state-of-the-world watches only. MuxCache
// routes the requests of its type URL here.
//
// A watch is answered once the node has a snapshot and either
//   - the resources the subscription selects (all of them for a wildcard)
//     differ from the ones last sent on the stream (a name added, dropped, or
//     sent at another version), or
//   - the request's version is not the node's and the request is no NACK
//     (a first request, a reconnect, or a version with nothing for this
//     subscription: answered with an empty response).
//
// So a NACK is answered only by the next snapshot that changes what the
// subscription gets: unlike the SnapshotCache, no NACK/response loop.
type extraCache struct {
	typeURL string

	mu     sync.Mutex
	nodes  map[string]*extraNode
	lastID uint64
}

type extraNode struct {
	set       bool   // a snapshot was set for the node
	version   string // its version
	resources map[string]*anypb.Any
	watches   map[uint64]extraWatch
}

type extraWatch struct {
	req *cachev3.Request
	sub cachev3.Subscription
	out chan cachev3.Response
}

var _ cachev3.Cache = (*extraCache)(nil)

func newExtraCache(typeURL string) *extraCache {
	return &extraCache{typeURL: typeURL, nodes: map[string]*extraNode{}}
}

// node returns the state of a node id, created empty. Call with mu held.
func (c *extraCache) node(id string) *extraNode {
	n := c.nodes[id]
	if n == nil {
		n = &extraNode{watches: map[uint64]extraWatch{}}
		c.nodes[id] = n
	}
	return n
}

// set replaces a node's resources (by name) at a version and answers the
// node's open watches that this changes.
func (c *extraCache) set(nodeID, version string, resources map[string]*anypb.Any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(nodeID)
	n.set, n.version, n.resources = true, version, resources
	for id, w := range n.watches {
		if resp := c.respond(n, w); resp != nil {
			delete(n.watches, id)
			w.out <- resp
		}
	}
}

// respond builds the answer to a watch, or nil when the watch must wait.
// Call with mu held.
func (c *extraCache) respond(n *extraNode, w extraWatch) cachev3.Response {
	if !n.set {
		return nil
	}
	var names []string
	if w.sub.IsWildcard() {
		for name := range n.resources {
			names = append(names, name)
		}
	} else {
		for name := range w.sub.SubscribedResources() {
			if _, ok := n.resources[name]; ok {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)

	sent := w.sub.ReturnedResources()
	changed := len(sent) != len(names)
	for _, name := range names {
		if v, ok := sent[name]; !ok || v != n.version {
			changed = true
		}
	}
	if !changed && (w.req.GetVersionInfo() == n.version || w.req.GetErrorDetail() != nil) {
		return nil
	}

	resp := &discovery.DiscoveryResponse{VersionInfo: n.version, TypeUrl: c.typeURL}
	returned := make(map[string]string, len(names))
	for _, name := range names {
		resp.Resources = append(resp.Resources, n.resources[name])
		returned[name] = n.version
	}
	return &cachev3.PassthroughResponse{Request: w.req, DiscoveryResponse: resp, ReturnedResources: returned}
}

// CreateWatch answers at once when it can, else keeps the watch until a
// snapshot for the node answers it or the server cancels it.
func (c *extraCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, fmt.Errorf("type %s does not match cache type %s", req.GetTypeUrl(), c.typeURL)
	}
	nodeID := req.GetNode().GetId()
	w := extraWatch{req: req, sub: sub, out: out}

	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(nodeID)
	if resp := c.respond(n, w); resp != nil {
		out <- resp
		return func() {}, nil
	}
	c.lastID++
	id := c.lastID
	n.watches[id] = w
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.nodes[nodeID].watches, id)
	}, nil
}

func (c *extraCache) CreateDeltaWatch(req *cachev3.DeltaRequest, _ cachev3.Subscription, _ chan cachev3.DeltaResponse) (func(), error) {
	return nil, fmt.Errorf("incremental xDS is not served for %s", req.GetTypeUrl())
}

func (c *extraCache) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("REST is not served for " + c.typeURL)
}

// caches holds what the snapshot command updates: go-control-plane's
// SnapshotCache for the standard types and an extraCache per extra type.
type caches struct {
	snapshots cachev3.SnapshotCache
	extra     map[string]*extraCache // by type URL
}

func newCaches(snapshots cachev3.SnapshotCache) *caches {
	return &caches{
		snapshots: snapshots,
		extra: map[string]*extraCache{
			thriftRouteType:  newExtraCache(thriftRouteType),
			dubboRouteType:   newExtraCache(dubboRouteType),
			genericRouteType: newExtraCache(genericRouteType),
		},
	}
}

// mux is the cache the xDS server uses: requests of an extra type go to its
// extraCache, all others to the snapshot cache (key "").
func (c *caches) mux() *cachev3.MuxCache {
	key := func(typeURL string) string {
		if _, ok := c.extra[typeURL]; ok {
			return typeURL
		}
		return ""
	}
	m := &cachev3.MuxCache{
		Classify:      func(r *cachev3.Request) string { return key(r.GetTypeUrl()) },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string { return key(r.GetTypeUrl()) },
		Caches:        map[string]cachev3.Cache{"": c.snapshots},
	}
	for typeURL, e := range c.extra {
		m.Caches[typeURL] = e
	}
	return m
}
