import os


def handle(task):
    key = os.environ["OPENAI_API_KEY"]
    return key
