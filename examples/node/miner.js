// A miner in Node: one bidirectional MinerService.Connect stream, hello, heartbeats, and jobs
// "run" by echoing the prompt back word by word (a stand-in for a real model).
//   AITBC_API_KEY=$(cat ~/.aitbc/miner.key) node miner.js [model] [payout-address]
import { load, settings } from './aitbc_proto.js';

const { aitbc } = load('aitbc/v1/miner.proto');
const { target, metadata, credentials } = settings();
const [model = 'smollm2-135m-instruct', payoutAddress = ''] = process.argv.slice(2);
const minerId = process.env.AITBC_MINER_ID || `node-${process.pid}`;

const client = new aitbc.v1.MinerService(target, credentials);
const stream = client.Connect(metadata);
let heartbeat = null;

stream.write({
  hello: {
    miner_id: minerId,
    models: [model],
    max_concurrency: 2,
    backend: 'node-example',
    version: '0.1.0',
    payout_address: payoutAddress,
  },
});

function run(job) {
  const text = job.messages.length ? job.messages.at(-1).content : job.prompt;
  const words = `Echo: ${text}`.split(/(?<= )/).slice(0, job.params.max_tokens || 16);
  const key = { job_id: job.job_id, attempt: job.attempt };
  stream.write({ started: { ...key, prompt_tokens: text.split(/\s+/).length } });
  for (const word of words) {
    stream.write({ tokens: { ...key, text: word, token_count: 1 } });
  }
  const finishReason = words.length === job.params.max_tokens ? 'length' : 'stop';
  stream.write({
    done: {
      ...key,
      output: words.join(''),
      prompt_tokens: text.split(/\s+/).length,
      completion_tokens: words.length,
      finish_reason: finishReason,
    },
  });
}

stream.on('data', (message) => {
  switch (message.msg) {
    case 'welcome': {
      const seconds = Number(message.welcome.heartbeat_interval?.seconds ?? 5);
      heartbeat = setInterval(() => stream.write({ heartbeat: { draining: false } }), seconds * 1000);
      console.log(`connected as ${message.welcome.miner_id}`);
      break;
    }
    case 'assign':
      run(message.assign);
      break;
    case 'cancel':
      // Jobs here finish at once; acknowledge with what was produced (nothing more will be).
      stream.write({ cancel_ack: { job_id: message.cancel.job_id, attempt: message.cancel.attempt, completion_tokens: 0 } });
      break;
    case 'drain':
      console.log(`draining: ${message.drain.reason}`);
      stream.end();
      break;
    default:
      break;
  }
});
stream.on('error', (error) => {
  console.error(`stream ended: ${error.details || error.message}`);
  process.exitCode = 1;
});
stream.on('end', () => clearInterval(heartbeat));

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    clearInterval(heartbeat);
    stream.end();
    client.close();
  });
}
