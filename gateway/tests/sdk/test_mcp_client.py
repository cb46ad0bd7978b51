"""The official MCP Python SDK (`mcp`) as a client of the gateway's MCP server `LLMProviderTool`.

Started by gateway/tests/mcp_sdk.rs, once per transport:
- MCP_TRANSPORT=http: MCP_URL is the gateway's /mcp, MCP_CLIENT_KEY a client key of it;
- MCP_TRANSPORT=stdio: MCP_COMMAND and MCP_CONFIG start `llm-gateway mcp --config F` (a fresh process per session),
  with MCP_GATEWAY_URL also `--gateway-url URL` (the tools act on that running gateway; MCP_CLIENT_KEY its key).
MCP_ADMIN_TOKEN is the gateway's admin token; LLM_MOCKS_<PROVIDER> the fakes' roots, for switching faults on.
Tests run in file order; the outage test is last (a quota cooldown outlives it on the shared HTTP gateway).
"""
import asyncio
import contextlib
import json
import os

import httpx
import jsonschema
import pytest
from mcp import ClientSession, McpError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

TOOLS = {
    # name: (readOnlyHint, destructiveHint, idempotentHint, openWorldHint); destructive counts only when not read-only
    "llm_generate": (False, False, False, True),
    "llm_providers": (True, None, True, False),
    "llm_explain_route": (True, None, True, False),
    "llm_offline_lookup": (True, None, True, False),
    "llm_smoke": (True, None, False, True),
    "llm_mode": (True, None, True, False),
    "llm_set_mode": (False, True, True, False),
}


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        pytest.fail(f"{name} is not set: run through `cargo nextest run -p llm-gateway --test mcp_sdk`")
    return v


def fault(provider: str, **spec) -> None:
    root = os.environ[f"LLM_MOCKS_{provider.upper()}"].rstrip("/")
    r = httpx.post(f"{root}/__mock/faults", json=spec)
    assert r.status_code == 201, r.text


def clear(provider: str) -> None:
    root = os.environ[f"LLM_MOCKS_{provider.upper()}"].rstrip("/")
    httpx.delete(f"{root}/__mock/faults")


@contextlib.asynccontextmanager
async def session(admin: bool = True):
    """An initialised session; `admin`: present the admin token (header on HTTP, LLM_MCP_ADMIN_TOKEN on stdio)."""
    transport = env("MCP_TRANSPORT")
    if transport == "http":
        headers = {"Authorization": f"Bearer {env('MCP_CLIENT_KEY')}"}
        if admin:
            headers["X-LLM-Admin-Token"] = env("MCP_ADMIN_TOKEN")
        async with httpx.AsyncClient(headers=headers, timeout=30, trust_env=False) as http:
            async with streamable_http_client(env("MCP_URL"), http_client=http) as (read, write, _):
                async with ClientSession(read, write) as s:
                    yield s, await s.initialize()
    else:
        child_env = {k: v for k, v in os.environ.items() if k != "LLM_MCP_ADMIN_TOKEN"}
        child_env["RUST_LOG"] = "warn"
        if admin:
            child_env["LLM_MCP_ADMIN_TOKEN"] = env("MCP_ADMIN_TOKEN")
        args = ["mcp", "--config", env("MCP_CONFIG")]
        if os.environ.get("MCP_GATEWAY_URL"):
            args += ["--gateway-url", env("MCP_GATEWAY_URL")]
            child_env["LLM_MCP_API_KEY"] = env("MCP_CLIENT_KEY")
        params = StdioServerParameters(command=env("MCP_COMMAND"), args=args, env=child_env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                yield s, await s.initialize()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def ok(result) -> dict:
    """A successful result: structuredContent, repeated as JSON text for older clients."""
    assert not result.isError, result.content
    assert result.structuredContent is not None
    assert json.loads(result.content[0].text) == result.structuredContent
    return result.structuredContent


def failed(result) -> str:
    assert result.isError, result
    text = result.content[0].text
    for secret in ("sk-test-", "s3cret-admin", "client-key-mcp", "Y2xpZW50OnNlY3JldA"):
        assert secret not in text, text
    return text


def test_initialize_and_list_tools():
    async def main():
        async with session() as (s, init):
            assert init.serverInfo.name == "LLMProviderTool"
            assert init.capabilities.tools is not None
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == set(TOOLS), sorted(tools)
            for name, t in tools.items():
                assert t.description and len(t.description) > 40, name
                assert t.inputSchema["type"] == "object", name
                assert t.inputSchema.get("additionalProperties") is False, name
                jsonschema.Draft202012Validator.check_schema(t.inputSchema)
                assert t.outputSchema and t.outputSchema["type"] == "object", name
                jsonschema.Draft202012Validator.check_schema(t.outputSchema)
                for schema in (t.inputSchema, t.outputSchema):
                    # Plain schemas: valid in draft-07 too, no dialect stamp, no references, no Rust formats.
                    jsonschema.Draft7Validator.check_schema(schema)
                    text = json.dumps(schema)
                    for needle in ('"$schema"', '"$ref"', '"$defs"', '"format"'):
                        assert needle not in text, (name, needle)
                ro, destructive, idempotent, open_world = TOOLS[name]
                a = t.annotations
                assert a.readOnlyHint is ro, name
                if destructive is not None:
                    assert a.destructiveHint is destructive, name
                assert a.idempotentHint is idempotent, name
                assert a.openWorldHint is open_world, name
            assert tools["llm_generate"].inputSchema["required"] == ["prompt"]
            assert tools["llm_set_mode"].inputSchema["required"] == ["mode"]

    run(main())


def test_every_tool():
    async def main():
        async with session() as (s, _):
            tools = {t.name: t for t in (await s.list_tools()).tools}

            def conforms(name, value):
                jsonschema.validate(value, tools[name].outputSchema)
                return value

            g = conforms("llm_generate", ok(await s.call_tool("llm_generate", {"prompt": "Tell me about fallbacks"})))
            assert g["provider"] == "openai" and g["source"] == "provider" and g["fallbacks"] == 0, g
            assert g["text"].startswith("[openai]"), g
            assert g["usage"]["total_tokens"] > 0, g
            g = ok(await s.call_tool(
                "llm_generate",
                {"prompt": "Hi", "system": "Be brief", "provider": "kimi", "max_tokens": 20, "temperature": 0.2},
            ))
            assert g["provider"] == "kimi" and g["fallbacks"] == 0, g

            p = conforms("llm_providers", ok(await s.call_tool("llm_providers", {})))
            names = [x["name"] for x in p["providers"]]
            assert "openai" in names and "kimi" in names, names
            assert all(x["breaker"] == "closed" for x in p["providers"]), p
            assert p["mode"] == "auto"

            r = conforms("llm_explain_route", ok(await s.call_tool("llm_explain_route", {})))
            assert r["would_serve"] == "openai", r
            assert [c["provider"] for c in r["candidates"]][:2] == ["openai", "kimi"], r
            r = ok(await s.call_tool("llm_explain_route", {"model": "default", "provider": "qwen"}))
            assert r["would_serve"] == "qwen" and r["preferred"] == "qwen", r

            hit = conforms("llm_offline_lookup", ok(await s.call_tool(
                "llm_offline_lookup", {"prompt": "Make an SQL filter for sales"})))
            assert hit["found"] and hit["clears_threshold"] and hit["score"] == 1.0, hit
            assert hit["package"].startswith("analytics-assistant@"), hit
            miss = ok(await s.call_tool("llm_offline_lookup", {"prompt": "zebra quantum violin"}))
            assert not miss["clears_threshold"], miss

            smoke = conforms("llm_smoke", ok(await s.call_tool("llm_smoke", {"provider": "openai"})))
            assert smoke["failed"] == 0 and smoke["checks"], smoke
            assert {c["provider"] for c in smoke["checks"]} == {"openai"}, smoke

            assert conforms("llm_mode", ok(await s.call_tool("llm_mode", {}))) == {"mode": "auto"}

    run(main())


def test_bad_arguments():
    async def main():
        async with session() as (s, _):
            cases = [
                ("llm_generate", {}, "prompt"),
                ("llm_generate", {"prompt": 5}, "prompt"),
                ("llm_generate", {"prompt": "   "}, "prompt"),
                ("llm_generate", {"prompt": "hi", "max_tokens": "ten"}, "max_tokens"),
                ("llm_generate", {"prompt": "hi", "max_tokens": -1}, "max_tokens"),
                ("llm_generate", {"prompt": "hi", "temperature": 9}, "temperature"),
                ("llm_generate", {"prompt": "hi", "provider": ["kimi"]}, "provider"),
                ("llm_generate", {"prompt": "hi", "colour": "red"}, "colour"),
                ("llm_generate", {"prompt": "hi", "model": "no-such-model"}, "no-such-model"),
                ("llm_explain_route", {"model": 1}, "model"),
                ("llm_explain_route", {"model": "no-such-model"}, "logical models"),
                ("llm_offline_lookup", {}, "prompt"),
                ("llm_offline_lookup", {"prompt": None}, "prompt"),
                ("llm_smoke", {"provider": "nobody"}, "nobody"),
                ("llm_smoke", {"full": "yes"}, "full"),
                ("llm_providers", {"x": 1}, "x"),
                ("llm_mode", {"verbose": True}, "verbose"),
                ("llm_set_mode", {}, "mode"),
                ("llm_set_mode", {"mode": "turbo"}, "turbo"),
                ("llm_set_mode", {"mode": 3}, "mode"),
            ]
            for name, args, needle in cases:
                text = failed(await s.call_tool(name, args))
                assert needle in text, (name, args, text)
            with pytest.raises(McpError) as e:
                await s.call_tool("llm_no_such_tool", {})
            assert e.value.error.code == -32602
            assert (await s.call_tool("llm_mode", {})).structuredContent == {"mode": "auto"}

    run(main())


def test_set_mode_needs_the_admin_token():
    async def main():
        async with session(admin=False) as (s, _):
            for name, args in [("llm_set_mode", {"mode": "offline"}), ("llm_mode", {}), ("llm_providers", {})]:
                text = failed(await s.call_tool(name, args))
                assert "admin" in text, text
            # Client tools need no admin token.
            ok(await s.call_tool("llm_explain_route", {}))
        async with session() as (s, _):
            assert ok(await s.call_tool("llm_mode", {})) == {"mode": "auto"}
            assert ok(await s.call_tool("llm_set_mode", {"mode": "offline"})) == {"mode": "offline", "previous": "auto"}
            assert ok(await s.call_tool("llm_mode", {})) == {"mode": "offline"}
            r = ok(await s.call_tool("llm_explain_route", {}))
            assert r["mode"] == "offline" and all(c["local"] for c in r["candidates"]), r
            assert ok(await s.call_tool("llm_set_mode", {"mode": "auto"})) == {"mode": "auto", "previous": "offline"}

    run(main())


def test_generate_during_an_outage_reports_the_fallback():
    async def main():
        clear("openai")
        fault("openai", fault="quota_exhausted")
        try:
            async with session() as (s, _):
                g = ok(await s.call_tool("llm_generate", {"prompt": "Is the primary down?"}))
                assert g["provider"] == "kimi" and g["source"] == "provider", g
                assert g["fallbacks"] == 1, g
                assert g["text"].startswith("[kimi]"), g
                p = ok(await s.call_tool("llm_providers", {}))
                openai = next(x for x in p["providers"] if x["name"] == "openai")
                assert openai["cooldown_reason"] == "quota_exhausted", openai
                assert openai["last_error_class"] == "quota_exhausted", openai
                r = ok(await s.call_tool("llm_explain_route", {}))
                first = r["candidates"][0]
                assert first["provider"] == "openai" and first["decision"] == "skip", r
                assert first["skip_outcome"] == "skipped_cooldown", r
                assert r["would_serve"] == "kimi", r
                # Every remote provider out: still answered, by the local tier, or an actionable isError.
                for name in ("kimi", "qwen", "gigachat"):
                    fault(name, fault="server_error")
                g = ok(await s.call_tool("llm_generate", {"prompt": "Anyone left?"}))
                assert g["provider"] == "ollama" and g["source"] == "local", g
        finally:
            for name in ("openai", "kimi", "qwen", "gigachat"):
                clear(name)

    run(main())
