"""Route templates and the host's first-match route table."""

from __future__ import annotations

import pytest

from tools.devhost.errors import StartupError
from tools.devhost.routes import Route, RouteTable, host_order, parse_template, routes_conflict, split_path


def match(template: str, path: str) -> dict[str, str] | None:
    return parse_template(template).match(split_path(path))


def table(*routes: tuple[str, str, list[str] | None]) -> RouteTable[str]:
    """Routes given as (function name, route, methods), registered in the host's order (by name)."""
    ordered = sorted(routes, key=lambda r: host_order(r[0]))
    return RouteTable([Route(name, route, parse_template(f"api/{route}"),
                             frozenset(methods) if methods else None, name) for name, route, methods in ordered])


def test_literals_match_ignoring_case_and_a_trailing_slash() -> None:
    assert match("api/Health", "/API/health/") == {}
    assert match("api/health", "/api/healthz") is None


def test_parameters_capture_decoded_segments_as_strings() -> None:
    assert match("api/items/{id}", "/api/items/caf%C3%A9") == {"id": "café"}
    assert match("api/items/{id}", "/api/items/a%2Fb") == {"id": "a%2Fb"}  # Kestrel keeps an encoded slash


@pytest.mark.parametrize(("constraint", "good", "bad"), [
    ("int", "-42", "4.2"),
    ("int", "2147483647", "2147483648"),
    ("long", "2147483648", "abc"),
    ("guid", "6f9619ff-8b86-d011-b42d-00c04fc964ff", "6f9619ff"),
    ("guid", "{6F9619FF-8B86-D011-B42D-00C04FC964FF}", "{6f9619ff-8b86-d011-b42d-00c04fc964ff"),
    ("alpha", "Abc", "abc1"),
    ("bool", "TRUE", "yes"),
    ("length(3)", "abc", "ab"),
    ("range(5,10)", "7", "11"),
    ("regex(^v\\d+$)", "V2", "v2x"),
])
def test_inline_constraints_decide_the_match(constraint: str, good: str, bad: str) -> None:
    template = f"api/x/{{p:{constraint}}}"
    assert match(template, f"/api/x/{good}") == {"p": good}
    assert match(template, f"/api/x/{bad}") is None


def test_optional_and_default_parameters_may_be_left_out() -> None:
    assert match("api/list/{sort?}", "/api/list") == {}
    assert match("api/list/{sort?}", "/api/list/name") == {"sort": "name"}
    assert match("api/page/{n:int=1}", "/api/page") == {"n": "1"}
    assert match("api/page/{n}", "/api/page") is None


def test_catch_all_takes_the_rest_of_the_path_or_nothing() -> None:
    assert match("api/{*rest}", "/api/a/b/c") == {"rest": "a/b/c"}
    assert match("api/{**rest}", "/api/") == {}
    assert match("{*route}", "/anything/at/all") == {"route": "anything/at/all"}


def test_complex_segments_split_on_their_literals() -> None:
    assert match("api/files/{name}.{ext}", "/api/files/report.final.pdf") == {"name": "report.final", "ext": "pdf"}


@pytest.mark.parametrize(("template", "message"), [
    ("api//x", "consecutively"),
    ("api/{*rest}/more", "last segment"),
    ("api/{a}{b}", "two consecutive parameters"),
    ("api/{id:nosuch}", "The constraint reference 'nosuch' could not be resolved"),
    ("api/{a}/{A}", "more than once"),
    ("api/{open", "closing"),
])
def test_bad_templates_fail_the_start_with_the_reason(template: str, message: str) -> None:
    with pytest.raises(StartupError, match=message):
        parse_template(template)


def test_the_first_route_in_function_name_order_wins_like_the_host() -> None:
    routes = table(("not_found", "{*path}", None), ("summarize", "v1/summarize", ["POST"]),
                   ("chat", "v1/chat", ["POST"]))
    assert [r.name for r in routes.routes] == ["chat", "not_found", "summarize"]
    chat = routes.match("/api/v1/chat", "POST")
    summarize = routes.match("/api/v1/summarize", "POST")
    assert chat is not None and chat[0].name == "chat"
    assert summarize is not None and summarize[0].name == "not_found"  # shadowed, as on the Functions host


def test_name_order_ignores_case_the_dotnet_way() -> None:
    # OrdinalIgnoreCase compares upper-cased text: '_' (0x5F) sorts after every letter.
    assert sorted(["aab", "a_b", "Abc"], key=host_order) == ["aab", "Abc", "a_b"]


def test_a_route_whose_methods_do_not_match_is_skipped() -> None:
    routes = table(("a_get_only", "things", ["GET"]), ("z_fallback", "{*rest}", None))
    get = routes.match("/api/things", "GET")
    post = routes.match("/api/things", "POST")
    assert get is not None and get[0].name == "a_get_only"
    assert post is not None and post[0].name == "z_fallback"
    assert table(("only", "things", ["GET"])).match("/api/things", "DELETE") is None


def test_shadowed_routes_are_reported_with_an_example_path() -> None:
    routes = table(("not_found", "{*path}", None), ("ready", "ready", ["GET"]), ("health", "health", ["GET"]))
    shadowed = [(earlier.name, later.name, path) for earlier, later, path in routes.shadowed()]
    assert shadowed == [("not_found", "ready", "/api/ready")]


def test_a_catch_all_sorted_last_shadows_nothing() -> None:
    routes = table(("zz_not_found", "{*path}", None), ("items", "items/{id:int}", ["GET"]))
    assert routes.shadowed() == []


def test_routes_conflict_when_text_and_a_method_are_shared() -> None:
    assert routes_conflict("Items/", frozenset({"GET"}), "/items", frozenset({"GET", "POST"}))
    assert routes_conflict("items", None, "items", frozenset({"PUT"}))
    assert not routes_conflict("items", frozenset({"GET"}), "items", frozenset({"PUT"}))
