// Loading the AITBC protos from the repository's proto/ folder, and reading the rich error status
// (google.rpc.Status with an ErrorInfo) that the coordinator attaches to every error.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const includeDirs = [path.join(repo, 'proto'), path.join(repo, 'third_party', 'googleapis')];

// The `aitbc.v1` package of the given files, e.g. load('aitbc/v1/jobs.proto').aitbc.v1.JobService.
export function load(...files) {
  const definition = protoLoader.loadSync(files, {
    includeDirs,
    keepCase: true, // proto field names, as in the docs: job_id, max_tokens
    longs: Number, // seq and unix seconds stay far below 2^53
    enums: String,
    defaults: true,
    oneofs: true, // a oneof's case is in a field named after it: message.msg === 'assign'
  });
  return grpc.loadPackageDefinition(definition);
}

// Where the coordinator listens and the key to send, from the environment (as the aitbc CLI reads them).
export function settings() {
  const target = process.env.AITBC_COORDINATOR || '127.0.0.1:50051';
  const apiKey = process.env.AITBC_API_KEY;
  if (!apiKey) {
    console.error('set AITBC_API_KEY to a key (aitbc keys create --role client, or --role miner for the miner)');
    process.exit(2);
  }
  const metadata = new grpc.Metadata();
  metadata.set('x-api-key', apiKey);
  return { target, metadata, credentials: grpc.credentials.createInsecure() };
}

const statusTypes = (() => {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      try {
        protobuf.util.fs.accessSync(candidate);
        return candidate;
      } catch {
        // not in this folder; google/protobuf/* come bundled with protobufjs
      }
    }
    return target;
  };
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
  return { Status: root.lookupType('google.rpc.Status'), ErrorInfo: root.lookupType('google.rpc.ErrorInfo') };
})();

// The ErrorInfo of a failed call: { reason: 'MODEL_NOT_FOUND', domain, metadata: { field: 'model' } }, or null.
export function errorInfo(error) {
  const [details] = error.metadata?.get('grpc-status-details-bin') ?? [];
  if (!details) return null;
  const status = statusTypes.Status.decode(details);
  const any = status.details.find((detail) => detail.type_url.endsWith('/google.rpc.ErrorInfo'));
  return any ? statusTypes.ErrorInfo.toObject(statusTypes.ErrorInfo.decode(any.value)) : null;
}
