package org.apache.dubbo.samples;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.RpcContext;

/**
 * A Dubbo consumer of {@link DemoService} (dubbo protocol, hessian2): direct to {@code --url}, or the
 * providers it reads from ZooKeeper with Dubbo's own registry client (interface-level discovery).
 *
 * <p>Usage: {@code java -cp dubbo-java-peer.jar org.apache.dubbo.samples.Consumer (--url dubbo://H:P |
 * --zk HOST:PORT) [--calls 1] [--method sayHello] [--arg bob] [--attachment k=v]... [--group G]
 * [--version 1.0.0] [--timeout-ms 3000] [--serialization hessian2|default]}
 *
 * <p>stdout: one line {@code {"ok":N,"errors":N,"results":{...},"errorMessages":{...}}}; exit 0.
 */
public final class Consumer {
    private static final String USAGE = "java -cp dubbo-java-peer.jar org.apache.dubbo.samples.Consumer "
            + "(--url dubbo://H:P | --zk HOST:PORT) [--calls 1] [--method sayHello] [--arg bob] [--attachment k=v]... "
            + "[--group G] [--version 1.0.0] [--timeout-ms 3000] [--serialization hessian2|default]";

    public static void main(String[] args) {
        Peer.quiet();
        Map<String, List<String>> opts = Peer.parse(args, USAGE,
                "url", "zk", "calls", "method", "arg", "attachment", "group", "version", "timeout-ms", "serialization");
        String url = Peer.one(opts, "url", "");
        String zk = Peer.one(opts, "zk", "");
        if (url.isEmpty() == zk.isEmpty()) {
            Peer.usage("give one of --url and --zk", USAGE);
        }
        int calls = Integer.parseInt(Peer.one(opts, "calls", "1"));
        String method = Peer.one(opts, "method", "sayHello");
        String arg = Peer.one(opts, "arg", "bob");
        String group = Peer.one(opts, "group", "");
        String version = Peer.one(opts, "version", "1.0.0");
        int timeout = Integer.parseInt(Peer.one(opts, "timeout-ms", "3000"));
        String serialization = Peer.one(opts, "serialization", "hessian2");
        Map<String, String> attachments = new LinkedHashMap<>();
        for (String kv : opts.getOrDefault("attachment", List.of())) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                Peer.usage("--attachment wants k=v, got " + kv, USAGE);
            }
            attachments.put(kv.substring(0, eq), kv.substring(eq + 1));
        }

        // Interface-level discovery only: read /dubbo/<interface>/providers, no application-level mapping.
        System.setProperty("dubbo.application.service-discovery.migration", "FORCE_INTERFACE");

        ApplicationConfig app = new ApplicationConfig("demo-java-consumer");
        app.setQosEnable(false);
        app.setMetadataType("local");

        ReferenceConfig<DemoService> reference = new ReferenceConfig<>();
        reference.setInterface(DemoService.class);
        reference.setVersion(version);
        reference.setTimeout(timeout);
        reference.setRetries(0);
        reference.setCheck(false);
        if (!group.isEmpty()) {
            reference.setGroup(group);
        }
        if (!serialization.equals("default")) {
            reference.setParameters(Map.of("serialization", serialization, "prefer.serialization", serialization));
        }

        DubboBootstrap bootstrap = DubboBootstrap.getInstance().application(app);
        if (!url.isEmpty()) {
            reference.setUrl(url);
            bootstrap.registry(new RegistryConfig(RegistryConfig.NO_AVAILABLE));
        } else {
            RegistryConfig registry = new RegistryConfig("zookeeper://" + zk);
            registry.setTimeout(3_000);
            registry.setUseAsConfigCenter(false);
            registry.setUseAsMetadataCenter(false);
            bootstrap.registry(registry);
        }
        bootstrap.reference(reference).start();

        int ok = 0;
        int errors = 0;
        Map<String, Object> results = new TreeMap<>();
        Map<String, Object> errorMessages = new TreeMap<>();
        DemoService demo = reference.get();
        for (int i = 0; i < calls; i++) {
            attachments.forEach((k, v) -> RpcContext.getClientAttachment().setAttachment(k, v));
            try {
                String reply = method.equals("getAttachment") ? demo.getAttachment(arg) : demo.sayHello(arg);
                ok++;
                results.merge(reply, 1, (a, b) -> (Integer) a + (Integer) b);
            } catch (RuntimeException e) {
                errors++;
                String msg = e.getClass().getSimpleName() + ": " + firstLine(e.getMessage());
                errorMessages.merge(msg, 1, (a, b) -> (Integer) a + (Integer) b);
            }
        }

        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("ok", ok);
        summary.put("errors", errors);
        summary.put("results", results);
        summary.put("errorMessages", errorMessages);
        Peer.OUT.println(Peer.obj(summary));
        Peer.OUT.flush();
        // No graceful shutdown to wait for: the summary is out.
        Runtime.getRuntime().halt(0);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
