package org.apache.dubbo.samples;

/** The service the proxy's examples route (the same interface as the Node peers in tests/peers/dubbo). */
public interface DemoService {
    /** {@code Hello NAME, from TAG}: the tag names the provider that answered. */
    String sayHello(String name);

    /** The value of request attachment {@code key} as the provider received it, or {@code <absent>}. */
    String getAttachment(String key);
}
