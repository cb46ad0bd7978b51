"""The OpenAI Agents SDK (PyPI `openai-agents`) in its default Responses mode against the gateway.

Started by gateway/tests/agents.rs with LLM_GATEWAY_URL (the gateway's /v1 base). One Agent with one function
tool, run with Runner.run; the SDK's default client is an AsyncOpenAI pointed at the gateway and tracing is
off, so nothing leaves loopback. Prints one JSON line: the tool calls the SDK ran, the final output, the
item types of the run and the model requests' usage, for the Rust test to check.
"""
import asyncio
import json
import os

from openai import AsyncOpenAI

from agents import (
    Agent,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)

CALLS = []


@function_tool
def get_weather(city: str) -> str:
    """The weather of a city."""
    CALLS.append(city)
    return json.dumps({"city": city, "temp_c": 3, "sky": "overcast"})


async def main() -> None:
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=os.environ["LLM_GATEWAY_URL"], api_key="gateway-test-key", max_retries=0)
    set_default_openai_client(client, use_for_tracing=False)
    agent = Agent(
        name="weather",
        instructions="Answer weather questions with the get_weather tool.",
        tools=[get_weather],
        # The SDK's default model class, named here to say which API it speaks: Responses.
        model=OpenAIResponsesModel(model="default", openai_client=client),
    )
    result = await Runner.run(agent, "What is the weather in Oslo?", max_turns=4)
    print(
        json.dumps(
            {
                "calls": CALLS,
                "final_output": result.final_output,
                "items": [item.type for item in result.new_items],
                "requests": len(result.raw_responses),
                "response_ids": [r.response_id for r in result.raw_responses],
                "total_tokens": sum(r.usage.total_tokens for r in result.raw_responses),
            }
        )
    )


asyncio.run(main())
