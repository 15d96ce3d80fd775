package main

import (
	"context"
	"encoding/json"
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	dubbo "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/dubbo_proxy/v3"
	generic "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/generic_proxy/v3"
	thrift "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/thrift_proxy/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// kinds maps a key of a snapshot command's "resources" object to its xDS type
// URL and a constructor of the message its entries are parsed into.
var kinds = []struct {
	key     string
	typeURL string
	newMsg  func() proto.Message
}{
	{"listeners", resource.ListenerType, func() proto.Message { return &listener.Listener{} }},
	{"routes", resource.RouteType, func() proto.Message { return &route.RouteConfiguration{} }},
	{"clusters", resource.ClusterType, func() proto.Message { return &cluster.Cluster{} }},
	{"endpoints", resource.EndpointType, func() proto.Message { return &endpoint.ClusterLoadAssignment{} }},
	{"secrets", resource.SecretType, func() proto.Message { return &tls.Secret{} }},
	// Served by extraCache, not by the SnapshotCache.
	{"thrift_routes", thriftRouteType, func() proto.Message { return &thrift.RouteConfiguration{} }},
	{"dubbo_routes", dubboRouteType, func() proto.Message { return &dubbo.MultipleRouteConfiguration{} }},
	{"generic_routes", genericRouteType, func() proto.Message { return &generic.RouteConfiguration{} }},
}

// parsed is a snapshot command's resources: a Snapshot of the standard types
// and, per extra type URL, the resources by name (as sent: Any).
type parsed struct {
	snapshot *cachev3.Snapshot
	extra    map[string]map[string]*anypb.Any
}

// parseResources parses the "resources" object of a snapshot command. Every
// kind is set, a missing list as an empty one, so that clients subscribed to a
// kind the test did not mention still get a (empty) response at this version.
// The snapshot is deliberately not checked with Consistent(): tests send
// dangling references and invalid resources on purpose.
func parseResources(c *caches, version string, raw map[string][]json.RawMessage) (*parsed, error) {
	for key := range raw {
		known := false
		for _, k := range kinds {
			known = known || k.key == key
		}
		if !known {
			return nil, fmt.Errorf("unknown resource list %q (want listeners, routes, clusters, endpoints, secrets, thrift_routes, dubbo_routes, generic_routes)", key)
		}
	}
	p := &parsed{extra: map[string]map[string]*anypb.Any{}}
	std := make(map[resource.Type][]types.Resource, len(kinds))
	for _, k := range kinds {
		_, isExtra := c.extra[k.typeURL]
		list := make([]types.Resource, 0, len(raw[k.key]))
		byName := map[string]*anypb.Any{}
		for i, js := range raw[k.key] {
			m := k.newMsg()
			if err := protojson.Unmarshal(js, m); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", k.key, i, err)
			}
			if !isExtra {
				list = append(list, m)
				continue
			}
			a, err := anypb.New(m)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", k.key, i, err)
			}
			byName[cachev3.GetResourceName(m)] = a // a repeated name: the last one
		}
		if isExtra {
			p.extra[k.typeURL] = byName
		} else {
			std[k.typeURL] = list
		}
	}
	snap, err := cachev3.NewSnapshot(version, std)
	if err != nil {
		return nil, err
	}
	p.snapshot = snap
	return p, nil
}

type snapshotCmd struct {
	Node      string                       `json:"node"`
	Version   string                       `json:"version"`
	Resources map[string][]json.RawMessage `json:"resources"`
}

type snapshotEvent struct {
	Event   string `json:"event"`
	Version string `json:"version"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// applySnapshot sets the node's snapshot in the snapshot cache, then the
// node's extra-type resources in their caches (all at the command's version);
// the answer is printed once both took it.
func applySnapshot(ctx context.Context, c *caches, line []byte) {
	var cmd snapshotCmd
	err := json.Unmarshal(line, &cmd)
	if err == nil {
		var p *parsed
		p, err = parseResources(c, cmd.Version, cmd.Resources)
		if err == nil {
			err = c.snapshots.SetSnapshot(ctx, cmd.Node, p.snapshot)
		}
		if err == nil {
			for _, k := range kinds { // in a fixed order: thrift, dubbo, generic
				if res, ok := p.extra[k.typeURL]; ok {
					c.extra[k.typeURL].set(cmd.Node, cmd.Version, res)
				}
			}
		}
	}
	if err != nil {
		emit(snapshotEvent{Event: "snapshot", Version: cmd.Version, OK: false, Error: err.Error()})
		return
	}
	emit(snapshotEvent{Event: "snapshot", Version: cmd.Version, OK: true})
}
