package main

import (
	"context"
	"encoding/json"
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
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
}

// buildSnapshot parses the "resources" object of a snapshot command. Every
// kind is set, a missing list as an empty one, so that clients subscribed to a
// kind the test did not mention still get a (empty) response at this version.
// The snapshot is deliberately not checked with Consistent(): tests send
// dangling references and invalid resources on purpose.
func buildSnapshot(version string, raw map[string][]json.RawMessage) (*cachev3.Snapshot, error) {
	for key := range raw {
		known := false
		for _, k := range kinds {
			known = known || k.key == key
		}
		if !known {
			return nil, fmt.Errorf("unknown resource list %q (want listeners, routes, clusters, endpoints, secrets)", key)
		}
	}
	res := make(map[resource.Type][]types.Resource, len(kinds))
	for _, k := range kinds {
		list := make([]types.Resource, 0, len(raw[k.key]))
		for i, js := range raw[k.key] {
			m := k.newMsg()
			if err := protojson.Unmarshal(js, m); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", k.key, i, err)
			}
			list = append(list, m)
		}
		res[k.typeURL] = list
	}
	return cachev3.NewSnapshot(version, res)
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

func applySnapshot(ctx context.Context, c cachev3.SnapshotCache, line []byte) {
	var cmd snapshotCmd
	err := json.Unmarshal(line, &cmd)
	if err == nil {
		var snap *cachev3.Snapshot
		snap, err = buildSnapshot(cmd.Version, cmd.Resources)
		if err == nil {
			err = c.SetSnapshot(ctx, cmd.Node, snap)
		}
	}
	if err != nil {
		emit(snapshotEvent{Event: "snapshot", Version: cmd.Version, OK: false, Error: err.Error()})
		return
	}
	emit(snapshotEvent{Event: "snapshot", Version: cmd.Version, OK: true})
}
