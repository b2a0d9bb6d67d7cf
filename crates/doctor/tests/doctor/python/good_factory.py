"""Clients built where they are used; near misses of every rule."""

import os
import subprocess
from functools import lru_cache

from autogen_ext.models.openai import OpenAIChatCompletionClient
from openai import OpenAI

PLACEHOLDER = "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxx"
DOC = "export OPENAI_API_KEY=sk-... before running"
CHECKSUM = "0123456789abcdef0123456789abcdef"


@lru_cache
def client():
    return OpenAI()


class Agent:
    def __init__(self):
        self.model = OpenAIChatCompletionClient(
            model="gpt-4o-mini", api_key=os.environ["OPENAI_API_KEY"]
        )


def router():
    return OpenAI(base_url="https://openrouter.ai/api/v1", api_key=os.environ["OPENROUTER_API_KEY"])


def children(extra):
    base = dict(os.environ)
    subprocess.run(["ls"], env={**base, "TASK": "1"})
    subprocess.run(["ls"], env=None)
    subprocess.run(["ls"], env=extra)
    subprocess.run(["ls"])


if __name__ == "__main__":
    OpenAI()
