from openai import OpenAI


def main():
    client = OpenAI()
    return client
