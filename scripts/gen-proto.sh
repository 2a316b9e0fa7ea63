#!/usr/bin/env bash
# Generates the TypeScript types of proto/ (src/infer/triton/proto/, never edited by hand) with
# @grpc/proto-loader's proto-loader-gen-types, using the loader options of src/infer/triton/client.ts.
#   scripts/gen-proto.sh [OUT_DIR]   (default src/infer/triton/proto; test/unit/proto.test.ts compares)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-src/infer/triton/proto}"
rm -rf "$out"
node_modules/.bin/proto-loader-gen-types --keepCase --longs=Number --enums=String --defaults --oneofs \
  --grpcLib=@grpc/grpc-js --importFileExtension=.js --outDir="$out" proto/grpc_service.proto >/dev/null
