import Anthropic from "@anthropic-ai/sdk";

export default function Page() {
  const client = new Anthropic();
  return <div>{String(client)}</div>;
}

export const getClient = () => new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY });

class Holder {
  client = new Anthropic();
}
