// The service the Thrift test peers serve and call (tests/peers/thrift).
// Regenerate the Python code with: thrift --gen py -out gen-py demo.thrift
namespace py demo

exception MyError {
  1: string message,
  2: i32 code,
}

struct Item {
  1: string name,
  2: i64 count,
  3: bool flag,
  4: double ratio,
  5: list<i32> values,
  6: map<string, string> tags,
  7: set<i16> small,
  8: optional Item child,
}

service Greeter {
  string hello(1: string name),
  oneway void notify(1: string msg),
  void fail(1: string msg) throws (1: MyError e),
  string header(1: string key),
  i32 sleep(1: i32 ms),
  Item echo(1: Item item),
}

service Calculator {
  i32 add(1: i32 a, 2: i32 b),
}
