//! The copy-paste commands the example gateway prints (lines starting with
//! `$ `; tests/gateway_example.rs runs every one and checks its answer).

/// The listeners' real addresses.
pub struct Addresses {
    /// `dubbo-in`.
    pub dubbo: String,
    /// `http-in`.
    pub http: String,
    /// `thrift-in`.
    pub thrift: String,
}

/// The cookie jar the sticky-cart commands share (the tests rewrite it).
pub const CART_JAR: &str = "/tmp/metaproxy-cart.jar";

/// Prints the commands, each after a comment saying what it shows.
pub fn print(a: &Addresses) {
    let Addresses {
        dubbo,
        http,
        thrift,
    } = a;
    let thrift_call = format!("cargo run --example thrift_call -- --addr {thrift}");
    let commands: &[(&str, String)] = &[
        (
            "Dubbo canary: ~90% user-v1, ~10% user-v2",
            format!("cargo run --example dubbo_call -- --addr {dubbo} --count 100"),
        ),
        (
            "Dubbo routing by attachment: every call to the batch-job provider",
            format!(
                "cargo run --example dubbo_call -- --addr {dubbo} --count 10 --attach batchJob=true"
            ),
        ),
        (
            "HTTP ingress: product canary (90% v1 / 10% v2; edit the weights in the config file, it reloads live)",
            format!(
                "for i in $(seq 20); do curl -s http://{http}/product/42; done | cut -d' ' -f1 | sort | uniq -c"
            ),
        ),
        (
            "the same over HTTP/2 (h2c)",
            format!("curl -s --http2-prior-knowledge http://{http}/product/42"),
        ),
        ("user service", format!("curl -s http://{http}/user/me")),
        (
            "sticky carts: the proxy sets a `cart` cookie (Max-Age 1h) on the first answer",
            format!("curl -si http://{http}/cart | grep -i '^set-cookie'"),
        ),
        (
            "with the cookie kept in a jar, every request lands on the same cart instance",
            format!(
                "for i in 1 2 3; do curl -s -c {CART_JAR} -b {CART_JAR} http://{http}/cart; done"
            ),
        ),
        (
            "without a jar every request is a new cart: spread over cart-1, cart-2, cart-3",
            format!(
                "for i in $(seq 30); do curl -s http://{http}/cart; done | cut -d' ' -f1 | sort | uniq -c"
            ),
        ),
        (
            "no route: 404 with x-metaproxy-reason",
            format!("curl -si http://{http}/nothing"),
        ),
        (
            "Thrift routing by method: every hello to greeter-v1 (framed binary)",
            format!("{thrift_call} --method hello --count 10"),
        ),
        (
            "... every header call to greeter-v2 (with --header: THeader; the info header reaches the server)",
            format!("{thrift_call} --method header --arg x-user --header x-user=alice --count 10"),
        ),
        (
            "Thrift routing by THeader info header: x-canary=true sends hello to greeter-v2",
            format!("{thrift_call} --method hello --header x-canary=true --count 10"),
        ),
        (
            "no route for other methods: TApplicationException UNKNOWN_METHOD from the proxy",
            format!("{thrift_call} --method getItem"),
        ),
    ];
    println!("\nTry, in another terminal (lines starting with `$`):");
    for (comment, command) in commands {
        println!("  # {comment}");
        println!("  $ {command}");
    }
}
