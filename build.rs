//! Compiles the gRPC API (proto/dipledger/v1/*.proto) with protox (pure Rust, no system
//! protoc) and generates the prost messages and tonic services. The encoded file descriptor set
//! is written next to the generated code for the server reflection service.

use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";
const PROTOS: &[&str] = &[
    "proto/dipledger/v1/common.proto",
    "proto/dipledger/v1/events.proto",
    "proto/dipledger/v1/event_store.proto",
    "proto/dipledger/v1/commands.proto",
    "proto/dipledger/v1/query.proto",
    "proto/dipledger/v1/admin.proto",
    "proto/dipledger/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTOS)?;
    std::fs::write(
        out_dir.join("dipledger_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
