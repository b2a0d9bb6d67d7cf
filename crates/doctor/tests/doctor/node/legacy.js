const { fork } = require("child_process");
const { Worker } = require("worker_threads");
const Anthropic = require("@anthropic-ai/sdk");
const anthropic = new Anthropic({ apiKey: "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJ" });
fork("./child.js", [], { env: { NODE_ENV: "production" } });
new Worker("./w.js", { env: { A: "1" } });
/abc/.exec("abc");
const compatible = () => new OpenAI({ baseURL: "http://localhost:11434/v1", apiKey: process.env.ANTHROPIC_API_KEY });
