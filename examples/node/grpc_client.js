// Submit a job over gRPC and print its tokens as they come; a refused request prints its ErrorInfo.
//   AITBC_API_KEY=$(cat ~/.aitbc/client.key) node grpc_client.js "Explain quantum computing" [model]
import { errorInfo, load, settings } from './aitbc_proto.js';

const { aitbc } = load('aitbc/v1/jobs.proto');
const { target, metadata, credentials } = settings();
const jobs = new aitbc.v1.JobService(target, credentials);
const FINAL = new Set(['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELED']);

const [prompt = 'Say hello', model = ''] = process.argv.slice(2);
const request = { prompt, model, params: { max_tokens: 32 } };

jobs.SubmitJob(request, metadata, (error, response) => {
  if (error) {
    const info = errorInfo(error);
    console.log(`error: ${info?.reason ?? error.code} field=${info?.metadata?.field ?? ''} ${error.details}`);
    process.exitCode = 1;
    return;
  }
  const job = response.job;
  console.log(`job: ${job.job_id} (${job.status})`);
  const events = jobs.WatchJob({ job_id: job.job_id, from_seq: 0 }, metadata);
  events.on('data', (event) => {
    if (event.event === 'tokens') {
      process.stdout.write(event.tokens.text);
    } else if (FINAL.has(event.state_change.status)) {
      console.log(`\nstatus: ${event.state_change.status} tokens: ${event.state_change.usage.completion_tokens}`);
    }
  });
  events.on('error', (streamError) => {
    console.log(`stream error: ${streamError.details}`);
    process.exitCode = 1;
  });
  events.on('end', () => jobs.close());
});
