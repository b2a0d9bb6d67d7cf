import Anthropic from "@anthropic-ai/sdk";

export default function Page() {
  const client = new Anthropic();
  return <div>{String(client)}</div>;
}

export const getClient = () => new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY });

class Holder {
  client = new Anthropic();
}

import { spawn } from "node:child_process";
const base = { ...process.env, NODE_ENV: "production" };
export const start = () => spawn("node", ["child.js"], { env: { ...base, TASK: "1" } });
