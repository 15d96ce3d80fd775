"""Equivalent configs for each proxy: one listener, one route to one echo
upstream (or a 50/50 split over two), one worker thread (or `workers`).

Each function returns the config text; `port` is where the proxy listens,
`ups` the echo upstreams as (host, port) pairs. Protocols: http1, h2 and
https (HTTP/1.1 to the upstream whatever the client spoke), h2up (HTTP/2
on both sides), grpc (HTTP/2 on both sides, a gRPC upstream), dubbo,
thrift.
"""

DUBBO_INTERFACE = "org.apache.dubbo.samples.DemoService"

# The `https` cases' certificate (set by compare.py): PEM certificate, key,
# and both in one file (HAProxy's `crt`).
TLS_CERT = None
TLS_KEY = None
TLS_PEM = None

HTTP_PROTOS = ("http1", "h2", "https", "h2up", "grpc")
# Protocols whose upstream speaks HTTP/2 (h2c, prior knowledge).
H2_UPSTREAM = ("h2up", "grpc")


def metaproxy(proto, port, ups, thrift_mode=None):
    """metaproxy: `proto` is one of the module's protocols."""
    listener_proto = "http" if proto in HTTP_PROTOS else proto
    # HTTP/1.1 to the upstream whatever the client spoke, but for the
    # HTTP/2-upstream cases (a gRPC backend is an `http2` cluster).
    if proto in H2_UPSTREAM:
        cluster_proto = "http2"
    elif proto in HTTP_PROTOS:
        cluster_proto = "http1"
    else:
        cluster_proto = proto
    tls = (
        f"\n    tls: {{ certificates: [ {{ cert: {TLS_CERT}, key: {TLS_KEY} }} ] }}"
        if proto == "https"
        else ""
    )
    if len(ups) == 1:
        route = "{ cluster: echo0 }"
    else:
        split = ", ".join(f"{{ cluster: echo{i}, weight: 50 }}" for i in range(len(ups)))
        route = f"{{ weighted: [ {split} ] }}"
    mode = f"\n    mode: {thrift_mode}" if thrift_mode else ""
    clusters = "".join(
        f"""
  - name: echo{i}
    protocol: {cluster_proto}{mode}
    endpoints: [ {{ address: "{h}:{p}" }} ]"""
        for i, (h, p) in enumerate(ups)
    )
    return f"""listeners:
  - name: bench
    address: 127.0.0.1:{port}
    protocol: {listener_proto}{tls}
    limits: {{ max_connections: 8000 }}
    routes:
      - route: {route}
clusters:{clusters}
"""


def _envoy_clusters(ups, h2=False):
    h2_opts = (
        """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"""
        if h2
        else ""
    )
    out = []
    for i, (h, p) in enumerate(ups):
        out.append(
            f"""  - name: echo{i}
    connect_timeout: 1s
    type: STATIC{h2_opts}
    load_assignment:
      cluster_name: echo{i}
      endpoints: [ {{ lb_endpoints: [ {{ endpoint: {{ address: {{ socket_address: {{ address: {h}, port_value: {p} }} }} }} }} ] }} ]"""
        )
    return "\n".join(out)


def _envoy_weighted(ups, indent):
    lines = [f"{indent}weighted_clusters:", f"{indent}  clusters:"]
    for i in range(len(ups)):
        lines.append(f"{indent}  - {{ name: echo{i}, weight: 50 }}")
    return "\n".join(lines)


def envoy(proto, port, ups):
    """Envoy 1.40: http_connection_manager, dubbo_proxy or thrift_proxy."""
    single = len(ups) == 1
    if proto in HTTP_PROTOS:
        action = (
            "                  cluster: echo0"
            if single
            else _envoy_weighted(ups, "                  ")
        )
        flt = f"""      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route:
{action}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"""
    elif proto == "dubbo":
        action = (
            "              route: { cluster: echo0 }"
            if single
            else "              route:\n" + _envoy_weighted(ups, "                ")
        )
        flt = f"""      - name: envoy.filters.network.dubbo_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy
          stat_prefix: bench
          route_config:
          - name: local
            interface: {DUBBO_INTERFACE}
            routes:
            - match: {{ method: {{ name: {{ exact: sayHello }} }} }}
{action}"""
    elif proto == "thrift":
        action = (
            "              route: { cluster: echo0 }"
            if single
            else "              route:\n" + _envoy_weighted(ups, "                ")
        )
        flt = f"""      - name: envoy.filters.network.thrift_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy
          stat_prefix: bench
          route_config:
            name: local
            routes:
            - match: {{ method_name: echo }}
{action}"""
    else:
        raise ValueError(proto)
    if proto == "https":
        flt += f"""
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {{ filename: {TLS_CERT} }}
              private_key: {{ filename: {TLS_KEY} }}"""
    return f"""static_resources:
  listeners:
  - name: bench
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
{flt}
  clusters:
{_envoy_clusters(ups, h2=proto in H2_UPSTREAM)}
"""


def haproxy(proto, port, ups, workers=1):
    """HAProxy: mode http (h2c on the listener for h2, and `proto h2` to
    the server too for h2up and grpc), mode tcp for RPC protocols."""
    mode = "http" if proto in HTTP_PROTOS else "tcp"
    bind_opts = {"https": f" ssl crt {TLS_PEM} alpn h2,http/1.1"}.get(proto, "")
    if proto in ("h2", "h2up", "grpc"):
        bind_opts = " proto h2"
    server_opts = " proto h2" if proto in H2_UPSTREAM else ""
    servers = "\n".join(
        f"  server s{i} {h}:{p} weight 1{server_opts}" for i, (h, p) in enumerate(ups)
    )
    keepalive = "  option http-keep-alive\n  http-reuse always\n" if mode == "http" else ""
    return f"""global
  nbthread {workers}
  maxconn 8000
  log stderr format raw local0 emerg

defaults
  mode {mode}
  timeout connect 5s
  timeout client 120s
  timeout server 120s
{keepalive}
frontend fe
  bind 127.0.0.1:{port}{bind_opts}
  default_backend be

backend be
  balance roundrobin
{servers}
"""


def nginx(proto, port, ups, tmp, workers=1):
    """nginx: one process (no master) for one worker, a master and its
    workers for more; keep-alive to the upstream; `grpc_pass` for grpc
    (nginx has no plain HTTP/2 upstream, so no h2up)."""
    if proto not in ("http1", "h2", "https", "grpc"):
        raise ValueError(proto)
    http2 = {"h2": " http2", "https": " ssl http2", "grpc": " http2"}.get(proto, "")
    tls = (
        f"\n    ssl_certificate {TLS_CERT};\n    ssl_certificate_key {TLS_KEY};"
        if proto == "https"
        else ""
    )
    servers = "\n".join(
        f"    server {h}:{p} weight=1;" for h, p in ups
    )
    if proto == "grpc":
        location = "grpc_pass grpc://be;"
    else:
        location = """proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";"""
    return f"""daemon off;
master_process {"off" if workers == 1 else "on"};
worker_processes {workers};
worker_rlimit_nofile 16000;
error_log stderr error;
pid {tmp}/nginx.pid;
events {{ worker_connections 8000; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  client_body_buffer_size 64k;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  http2_max_requests 100000000;
  upstream be {{
{servers}
    keepalive 64;
    keepalive_requests 100000000;
  }}
  server {{
    listen 127.0.0.1:{port}{http2};{tls}
    location / {{
      {location}
    }}
  }}
}}
"""
