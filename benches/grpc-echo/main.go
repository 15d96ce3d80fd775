// Command grpc-echo is the gRPC upstream of the side-by-side benchmark
// (benches/compare, docs/benchmarks.md). It serves bench.Echo (echo.proto
// beside this file; ghz reads that file, so no protoc is needed):
//
//   - Unary: answers each google.protobuf.BytesValue with the same value;
//   - Bidi: answers every message of a stream with the same message, in
//     order, and ends the stream when the client does.
//
// The service is registered by hand with the well-known BytesValue type,
// so there is no generated code. It listens on 127.0.0.1 (port 0 by
// default) and prints `listening address=127.0.0.1:PORT` on stdout, as the
// Rust echo-upstream does, for compare.py to read.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func unary(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	msg := new(wrapperspb.BytesValue)
	if err := dec(msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func bidi(_ any, stream grpc.ServerStream) error {
	for {
		msg := new(wrapperspb.BytesValue)
		if err := stream.RecvMsg(msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := stream.SendMsg(msg); err != nil {
			return err
		}
	}
}

var echoService = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Unary", Handler: unary}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Bidi", Handler: bidi, ServerStreams: true, ClientStreams: true},
	},
	Metadata: "echo.proto",
}

func main() {
	addr := flag.String("l", "127.0.0.1:0", "listen address")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxConcurrentStreams(1 << 20))
	srv.RegisterService(&echoService, struct{}{})
	fmt.Fprintf(os.Stdout, "listening address=%s\n", lis.Addr())
	if err := srv.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
