import OpenAI, { AzureOpenAI } from "openai";
import { spawn, execFile } from "node:child_process";
import { ChatOpenAI } from "@langchain/openai";

export const openai = new OpenAI();
const llm = new ChatOpenAI({ apiKey: process.env.AZURE_OPENAI_API_KEY });

export function run(task: string) {
  spawn("node", ["child.js"], { env: { PATH: process.env.PATH } });
  execFile("node", ["child.js"], { env: {} }, () => {});
  spawn("node", ["child.js"], { env: { ...process.env, TASK: task } });
  return new AzureOpenAI({ apiKey: process.env.AZURE_OPENAI_API_KEY!, endpoint: "https://api.openai.com" });
}
