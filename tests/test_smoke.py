from tests.live import live_server


def test_password_grant_issues_token(get_token):
    body = get_token()
    assert body["token_type"] == "Bearer"


def test_live_server_answers(config):
    with live_server(config) as url:
        import requests

        assert requests.get(url + "/readyz", timeout=5).json()["status"] == "ready"
