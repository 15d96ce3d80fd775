package org.apache.dubbo.samples;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What the provider and the consumer share: argument parsing, stdout for JSON only, quiet logs. */
final class Peer {
    private Peer() {}

    /** The real stdout: JSON lines only. Everything else printed goes to stderr. */
    static final PrintStream OUT =
            new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

    /** Before any Dubbo class loads: logs to stderr (slf4j-simple) at WARN, stray prints to stderr. */
    static void quiet() {
        System.setOut(System.err);
        setDefault("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        setDefault("org.slf4j.simpleLogger.logFile", "System.err");
        setDefault("dubbo.application.logger", "slf4j");
        // Dubbo never registers or binds a loopback address it picks itself (127.* counts as "invalid",
        // and DUBBO_IP_TO_REGISTRY=127.0.0.1 is refused): with every network interface ignored, its
        // local-address lookup finds none and falls back to 127.0.0.1, so the peers stay on loopback.
        setDefault("dubbo.network.interface.ignored", ".*");
        // (It logs a caught NullPointerException for each lookup that finds no interface.)
        setDefault("org.slf4j.simpleLogger.log.org.apache.dubbo.common.utils.NetUtils", "error");
        // Shut down at once when told to (the tests stop peers often).
        setDefault("dubbo.service.shutdown.wait", "0");
    }

    private static void setDefault(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    /** Parsed {@code --name value} pairs; repeatable names keep every value. */
    static Map<String, List<String>> parse(String[] args, String usage, String... known) {
        Map<String, List<String>> opts = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || !List.of(known).contains(a.substring(2))) {
                usage("unknown argument: " + a, usage);
            }
            if (i + 1 >= args.length) {
                usage("missing value for " + a, usage);
            }
            opts.computeIfAbsent(a.substring(2), k -> new ArrayList<>()).add(args[++i]);
        }
        return opts;
    }

    static String one(Map<String, List<String>> opts, String name, String dflt) {
        List<String> v = opts.get(name);
        return v == null ? dflt : v.get(v.size() - 1);
    }

    static void usage(String msg, String usage) {
        System.err.println(msg);
        System.err.println("usage: " + usage);
        System.exit(2);
    }

    /** A JSON string literal. */
    static String str(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    /** A JSON object of string keys; values are strings, numbers, booleans or maps. */
    static String obj(Map<String, ?> m) {
        StringBuilder b = new StringBuilder("{");
        for (Map.Entry<String, ?> e : m.entrySet()) {
            if (b.length() > 1) {
                b.append(',');
            }
            b.append(str(e.getKey())).append(':').append(value(e.getValue()));
        }
        return b.append('}').toString();
    }

    @SuppressWarnings("unchecked")
    private static String value(Object v) {
        if (v == null) {
            return "null";
        } else if (v instanceof Number || v instanceof Boolean) {
            return v.toString();
        } else if (v instanceof Map<?, ?> m) {
            return obj((Map<String, ?>) m);
        } else {
            return str(String.valueOf(v));
        }
    }
}
