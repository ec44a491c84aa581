// The official OpenAI Node client against the gateway: list the models that can run now, then stream a chat.
//   AITBC_API_KEY=$(cat ~/.aitbc/client.key) node openai_client.js [http://127.0.0.1:8080]
import OpenAI from 'openai';

const baseURL = `${process.argv[2] || process.env.AITBC_GATEWAY || 'http://127.0.0.1:8080'}/v1`;
const client = new OpenAI({ baseURL, apiKey: process.env.AITBC_API_KEY || 'missing', maxRetries: 0 });

try {
  const models = await client.models.list();
  const ids = models.data.map((model) => model.id);
  console.log(`models: ${ids.join(', ')}`);
  const stream = await client.chat.completions.create({
    model: ids[0],
    messages: [{ role: 'user', content: 'Say hello from Node' }],
    max_tokens: 16,
    stream: true,
  });
  for await (const chunk of stream) {
    process.stdout.write(chunk.choices[0]?.delta?.content ?? '');
  }
  console.log();
} catch (error) {
  // The gateway answers in OpenAI's error shape, so the message shows here rather than "(no body)".
  console.log(`error: ${error.status} ${error.code}: ${error.message}`);
  process.exitCode = 1;
}
