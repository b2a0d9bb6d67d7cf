import os
import subprocess

from anthropic import Anthropic
from openai import AzureOpenAI, OpenAI

client = OpenAI()
azure = AzureOpenAI(
    api_key=os.environ["OPENAI_API_KEY"],
    azure_endpoint="https://api.openai.com/v1",
    api_version="2024-10-21",
)
claude = Anthropic(api_key=os.getenv("OPENAI_API_KEY"))


def run(task):
    subprocess.run(["python", "child.py"], env={"PATH": "/usr/bin"})
    subprocess.run(["python", "child.py"], env={**os.environ, "TASK": task})
    subprocess.run(["python", "child.py"], env=dict(os.environ, TASK=task))
    subprocess.run(["python", "child.py"], env={})
    os.execve("/usr/bin/python3", ["python3", "child.py"], {"HOME": "/tmp"})


API_KEY = "sk-proj-abcdefghijklmnop0123456789ABCDEFGH"
