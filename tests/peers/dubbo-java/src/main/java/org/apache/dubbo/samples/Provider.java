package org.apache.dubbo.samples;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.RpcContext;

/**
 * A Dubbo provider of {@link DemoService} (dubbo protocol, hessian2) on 127.0.0.1.
 *
 * <p>Usage: {@code java -jar dubbo-java-peer.jar --tag T [--zk HOST:PORT] [--group G] [--version 1.0.0]
 * [--session-ms 4000]}. With {@code --zk} it registers in ZooKeeper (Dubbo's own Curator 5 registry,
 * interface-level nodes under /dubbo); without, no registry.
 *
 * <p>stdout: {@code {"event":"listening","port":N}} once exported (and registered), then one
 * {@code {"event":"call",...}} line per call. "stop" on stdin, or stdin closing, stops it
 * gracefully (its registry node goes at once).
 */
public final class Provider {
    private static final String USAGE =
            "java -jar dubbo-java-peer.jar --tag T [--zk HOST:PORT] [--group G] [--version 1.0.0] [--session-ms 4000]";

    public static void main(String[] args) throws Exception {
        Peer.quiet();
        Map<String, List<String>> opts = Peer.parse(args, USAGE, "tag", "zk", "group", "version", "session-ms");
        String tag = Peer.one(opts, "tag", "");
        if (tag.isEmpty()) {
            Peer.usage("--tag is required", USAGE);
        }
        String zk = Peer.one(opts, "zk", "");
        String group = Peer.one(opts, "group", "");
        String version = Peer.one(opts, "version", "1.0.0");
        int sessionMs = Integer.parseInt(Peer.one(opts, "session-ms", "4000"));

        // A free port from the kernel, handed to Dubbo (its own "random" port scans up from 20880).
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }

        ApplicationConfig app = new ApplicationConfig("demo-java-provider-" + tag);
        app.setQosEnable(false);
        app.setRegisterMode("interface");
        app.setMetadataType("local");

        ProtocolConfig protocol = new ProtocolConfig("dubbo", port);
        protocol.setHost("127.0.0.1");
        protocol.setSerialization("hessian2");
        protocol.setPreferSerialization("hessian2");

        RegistryConfig registry;
        if (zk.isEmpty()) {
            registry = new RegistryConfig(RegistryConfig.NO_AVAILABLE);
        } else {
            registry = new RegistryConfig("zookeeper://" + zk);
            registry.setSession(sessionMs);
            registry.setTimeout(3_000);
            registry.setUseAsConfigCenter(false);
            registry.setUseAsMetadataCenter(false);
        }

        ServiceConfig<DemoService> service = new ServiceConfig<>();
        service.setInterface(DemoService.class);
        service.setRef(new Impl(tag));
        service.setVersion(version);
        if (!group.isEmpty()) {
            service.setGroup(group);
        }

        DubboBootstrap bootstrap = DubboBootstrap.getInstance()
                .application(app)
                .registry(registry)
                .protocol(protocol)
                .service(service)
                .start();

        Map<String, Object> ready = new LinkedHashMap<>();
        ready.put("event", "listening");
        ready.put("port", port);
        ready.put("registered", !zk.isEmpty());
        ready.put("url", service.getExportedUrls().isEmpty() ? "" : service.getExportedUrls().get(0).toFullString());
        Peer.OUT.println(Peer.obj(ready));

        // "stop" or EOF on stdin: a graceful stop (unexport, unregister), then exit.
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.trim().equals("stop")) {
                break;
            }
        }
        bootstrap.stop();
        Runtime.getRuntime().halt(0);
    }

    static final class Impl implements DemoService {
        private final String tag;

        Impl(String tag) {
            this.tag = tag;
        }

        @Override
        public String sayHello(String name) {
            log("sayHello", name);
            return "Hello " + name + ", from " + tag;
        }

        @Override
        public String getAttachment(String key) {
            log("getAttachment", key);
            Object v = RpcContext.getServerAttachment().getObjectAttachment(key);
            return v == null ? "<absent>" : String.valueOf(v);
        }

        private void log(String method, String arg) {
            Map<String, Object> attachments = new TreeMap<>();
            RpcContext.getServerAttachment().getObjectAttachments().forEach((k, v) -> attachments.put(k, String.valueOf(v)));
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("event", "call");
            call.put("method", method);
            call.put("args", arg);
            call.put("tag", tag);
            call.put("attachments", attachments);
            synchronized (Peer.OUT) {
                Peer.OUT.println(Peer.obj(call));
            }
        }
    }
}
