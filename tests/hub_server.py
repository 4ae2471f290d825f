"""A small in-memory stand-in for the Hugging Face Hub HTTP API, for tests.

It speaks enough of the API for the real ``huggingface_hub`` client (2.4, with Xet disabled) to create repos,
commit files (regular and LFS) and download them again, and for ``sentence-transformers`` to load a model
by repo id. It enforces the parts of the real Hub's behaviour that a publisher depends on:

- writes need ``Authorization: Bearer <write token>`` (401 without, 401 for an unknown token, 403 for a
  read-only token or a namespace the user does not belong to);
- a commit goes to an existing repo and branch, and is all-or-nothing: every line is checked (LFS objects
  uploaded with the right size, regular files not binary, deleted paths present, parent commit current)
  before anything becomes visible;
- private repos are invisible to anonymous callers (401 + ``X-Error-Code: RepoNotFound``);
- missing files answer ``X-Error-Code: EntryNotFound``, missing repos ``RepoNotFound``, unknown revisions
  ``RevisionNotFound``.

LFS blobs live behind a second listener on another port (the "CDN"): resolve answers a 302 to a signed URL
there, as the real Hub does, so the client takes its metadata from the redirect and drops its token.

Client settings (read at import time, so run the client in a subprocess): ``HF_ENDPOINT=server.endpoint``,
``HF_TOKEN=server.token``, ``HF_HUB_DISABLE_XET=1``, ``HF_HOME=<tmp>``, ``HF_HUB_DISABLE_TELEMETRY=1``.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

_REPO_TYPES = ("model", "dataset", "space")
# URL prefix of each repo type on the web side (resolve, LFS batch); models have none.
_WEB_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_MAX_BODY = 512 * 1024 * 1024
_LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
_COMMIT_HEX = re.compile(r"^[0-9a-f]{40}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

# A shortened version of the .gitattributes the Hub puts in every new repo: it decides what preupload sends to LFS.
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
        "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
        "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
        "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
    )
)

FAULT_KINDS = (
    "commit_500",  # the next commit request answers 500 and changes nothing
    "commit_500_after_apply",  # the commit is applied but the answer is a 500 (a lost response)
    "lfs_put_403",  # the next LFS upload PUT is refused (expired signature); the client does not retry a 403
    "lfs_put_500",  # the next LFS upload PUT answers 500 and stores nothing; the client retries 5xx
    "preupload_500",  # the next preupload request answers 500
)


class HubError(Exception):
    """An HTTP error answer, with the Hub's error headers."""

    def __init__(
        self, status: int, message: str, error_code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = dict(headers or {})


def git_blob_oid(data: bytes) -> str:
    """Git's object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in the git tree for an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class _File:
    data: bytes
    lfs: bool
    sha256: str
    blob_oid: str  # the git oid of what the tree holds: the content, or the LFS pointer

    @classmethod
    def make(cls, data: bytes, lfs: bool) -> _File:
        sha = hashlib.sha256(data).hexdigest()
        blob = lfs_pointer(sha, len(data)) if lfs else data
        return cls(data=data, lfs=lfs, sha256=sha, blob_oid=git_blob_oid(blob))

    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, len(self.data)))


@dataclass
class _Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, _File]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class HubServer:
    """An in-memory Hub on 127.0.0.1: a main listener (API, resolve) and a CDN listener (LFS blobs)."""

    def __init__(
        self,
        user: str = "hub-user",
        orgs: tuple[str, ...] = ("org", "st-recipe"),
        tree_page_size: int = 1000,
    ) -> None:
        """Set up an empty Hub; `user` and `orgs` are the namespaces the tokens may write to."""
        self.user = user
        self.orgs = tuple(orgs)
        self.token = "hf_test_write_" + secrets.token_hex(12)
        self.read_token = "hf_test_read_" + secrets.token_hex(12)
        self.tree_page_size = tree_page_size
        self._secret = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._faults: dict[str, int] = {}
        self._log: list[dict[str, Any]] = []
        self._commit_counter = 0
        self._main: ThreadingHTTPServer | None = None
        self._cdn: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> HubServer:
        """Start both listeners on free ports of 127.0.0.1."""
        if self._main is not None:
            return self
        self._main = _Listener(("127.0.0.1", 0), _Handler, self, cdn=False)
        self._cdn = _Listener(("127.0.0.1", 0), _Handler, self, cdn=True)
        for srv in (self._main, self._cdn):
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both listeners and wait for their threads."""
        for srv in (self._main, self._cdn):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._main = self._cdn = None
        self._threads = []

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """Base URL for HF_ENDPOINT."""
        assert self._main is not None, "server not started"
        return f"http://127.0.0.1:{self._main.server_address[1]}"

    @property
    def cdn_endpoint(self) -> str:
        """Base URL of the listener that serves LFS blobs."""
        assert self._cdn is not None, "server not started"
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def client_env(self, hf_home: str, token: str | None = "write") -> dict[str, str]:
        """Environment variables pointing a fresh huggingface_hub process at this server."""
        env = {
            "HF_ENDPOINT": self.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": hf_home,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        if token == "write":
            env["HF_TOKEN"] = self.token
        elif token == "read":
            env["HF_TOKEN"] = self.read_token
        elif token is not None:
            env["HF_TOKEN"] = token
        return env

    # ----------------------------------------------------------------- helpers for tests

    def inject_fault(self, kind: str, times: int = 1) -> None:
        """Make the next `times` requests of this kind fail (see FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._faults[kind] = self._faults.get(kind, 0) + times

    def fail_next_commit_after_lfs(self, n: int = 1) -> None:
        """Let uploads through but answer the next `n` commit requests with a 500 that changes nothing."""
        self.inject_fault("commit_500", n)

    def clear_faults(self) -> None:
        """Drop all pending faults."""
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> dict[str, int]:
        """Faults injected but not triggered yet."""
        with self._lock:
            return {k: v for k, v in self._faults.items() if v > 0}

    def create_repo(self, repo_id: str, private: bool = False, repo_type: str = "model") -> None:
        """Create a repo directly (no HTTP), with the Hub's initial .gitattributes commit."""
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                raise ValueError(f"{repo_type} repo {repo_id} exists")
            self._create_repo_locked(repo_type, repo_id, private)

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        """Whether the repo exists."""
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def repo_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """Path -> content of every file at `revision` (a branch or a full commit sha)."""
        with self._lock:
            repo = self._get_repo_any(repo_type, repo_id)
            commit = self._resolve_rev(repo, revision)
            return {path: f.data for path, f in sorted(commit.files.items())}

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[dict[str, Any]]:
        """The history of `revision`, newest first: dicts with oid, parent, title, message, date, files."""
        with self._lock:
            repo = self._get_repo_any(repo_type, repo_id)
            out: list[dict[str, Any]] = []
            commit: _Commit | None = self._resolve_rev(repo, revision)
            for _ in range(len(repo.commits)):
                if commit is None:
                    break
                out.append(
                    {
                        "oid": commit.oid,
                        "parent": commit.parent,
                        "title": commit.title,
                        "message": commit.message,
                        "date": commit.date,
                        "files": sorted(commit.files),
                    }
                )
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return out

    def lfs_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> set[str]:
        """Paths stored through LFS at `revision`."""
        with self._lock:
            repo = self._get_repo_any(repo_type, repo_id)
            return {p for p, f in self._resolve_rev(repo, revision).files.items() if f.lfs}

    def uploaded_lfs_objects(self, repo_id: str, repo_type: str = "model") -> set[str]:
        """sha256 of every LFS object uploaded to the repo, committed or not."""
        with self._lock:
            return set(self._get_repo_any(repo_type, repo_id).lfs_objects)

    def request_log(self) -> list[dict[str, Any]]:
        """Every request served so far: listener, method, path, status, auth (sent a token), error message."""
        with self._lock:
            return list(self._log)

    # ----------------------------------------------------------------- internals: state

    def _take_fault(self, kind: str) -> bool:
        with self._lock:
            left = self._faults.get(kind, 0)
            if left <= 0:
                return False
            self._faults[kind] = left - 1
            return True

    def _create_repo_locked(self, repo_type: str, repo_id: str, private: bool) -> _Repo:
        repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=_now())
        self._repos[(repo_type, repo_id)] = repo
        files = {".gitattributes": _File.make(DEFAULT_GITATTRIBUTES.encode(), lfs=False)}
        self._add_commit_locked(repo, "main", None, files, "initial commit", "")
        return repo

    def _add_commit_locked(
        self, repo: _Repo, branch: str, parent: str | None, files: dict[str, _File], title: str, message: str
    ) -> _Commit:
        self._commit_counter += 1
        tree = "\n".join(f"{p} {f.blob_oid}" for p, f in sorted(files.items()))
        seed = f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{tree}\n{title}\n{message}\n{self._commit_counter}"
        oid = hashlib.sha1(seed.encode()).hexdigest()
        commit = _Commit(oid=oid, parent=parent, title=title, message=message, date=_now(), files=dict(files))
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    def _get_repo_any(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id}")
        return repo

    def _resolve_rev(self, repo: _Repo, revision: str) -> _Commit:
        if revision in repo.branches:
            return repo.commits[repo.branches[revision]]
        if _COMMIT_HEX.match(revision) and revision in repo.commits:
            return repo.commits[revision]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\0".join(parts).encode(), hashlib.sha256).hexdigest()

    def _lfs_matcher(self, files: dict[str, _File]) -> list[str]:
        attrs = files.get(".gitattributes")
        text = attrs.data.decode("utf-8", "replace") if attrs is not None else ""
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()]

    @staticmethod
    def _matches(path: str, patterns: list[str]) -> bool:
        name = path.rsplit("/", 1)[-1]
        for pattern in patterns:
            if "/" in pattern.rstrip("/"):
                if fnmatch.fnmatch(path, pattern.replace("**/", "*")) or fnmatch.fnmatch(path, pattern):
                    return True
            elif fnmatch.fnmatch(name, pattern):
                return True
        return False


class _Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, hub: HubServer, cdn: bool) -> None:
        super().__init__(address, handler)
        self.hub = hub
        self.cdn = cdn


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Response:
    # default=str: card metadata may hold YAML dates, which JSON cannot encode.
    return _Response(status, json.dumps(obj, default=str).encode(), dict(headers or {}))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Listener

    # ----------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from the base class
        pass  # the request log keeps what tests need; stderr noise would drown pytest output

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _dispatch(self, method: str) -> None:
        error: str | None = None
        split = urlsplit(self.path)
        self._raw_path = split.path
        self._query = parse_qs(split.query, keep_blank_values=True)
        self._body_cache: bytes | None = None
        try:
            if self.server.cdn:
                resp = self._route_cdn(method)
            else:
                resp = self._route_main(method)
        except HubError as err:
            error = err.message
            headers = {**err.headers, "X-Error-Message": err.message}
            if err.error_code:
                headers["X-Error-Code"] = err.error_code
            resp = _json({"error": err.message}, err.status, headers)
        except Exception as err:  # a bug in the fixture must show up as a 500, not a hung client
            error = f"fixture error: {type(err).__name__}: {err}"
            resp = _json({"error": error}, 500)
        # Read what the client sent even on errors, or the next request on this connection would be garbage.
        if self._body_cache is None and method in ("POST", "PUT"):
            try:
                self._body()
            except HubError:
                self.close_connection = True
        with self.hub._lock:
            self.hub._log.append(
                {
                    "listener": "cdn" if self.server.cdn else "main",
                    "method": method,
                    "path": self._raw_path,
                    "status": resp.status,
                    "auth": "Authorization" in self.headers,
                    "error": error,
                }
            )
        self._send(method, resp)

    def _send(self, method: str, resp: _Response) -> None:
        self.send_response(resp.status)
        headers = {"Content-Type": resp.content_type, **resp.headers}
        headers.setdefault("Content-Length", str(len(resp.body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method != "HEAD" and resp.body:
            self.wfile.write(resp.body)

    def _body(self) -> bytes:
        if self._body_cache is not None:
            return self._body_cache
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            for _ in range(10_000_000):  # a bound, not a limit anyone reaches: each chunk is >= 1 byte
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    for _ in range(100):  # trailer lines end with an empty line
                        if self.rfile.readline(1024) in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > _MAX_BODY:
                    raise HubError(413, "request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            data = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                raise HubError(413, "request body too large")
            data = self.rfile.read(length) if length else b""
        self._body_cache = data
        return data

    def _json_body(self) -> Any:
        try:
            return json.loads(self._body() or b"{}")
        except ValueError as err:
            raise HubError(400, f"invalid JSON body: {err}") from err

    # ----------------------------------------------------------------- auth

    def _caller(self) -> str | None:
        """'write', 'read' or None (anonymous); an unknown token is a 401 everywhere, as on the Hub."""
        auth = self.headers.get("Authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HubError(401, "Invalid credentials in Authorization header")
        if hmac.compare_digest(token, self.hub.token):
            return "write"
        if hmac.compare_digest(token, self.hub.read_token):
            return "read"
        raise HubError(401, "Invalid credentials in Authorization header")

    def _require_write(self, namespace: str) -> None:
        caller = self._caller()
        if caller is None:
            raise HubError(401, "You must be authenticated to access this resource.")
        if caller != "write":
            raise HubError(403, "This token does not have write access.")
        if namespace not in (self.hub.user, *self.hub.orgs):
            raise HubError(403, f"You don't have the rights to write to the namespace {namespace!r}.")

    def _readable_repo(self, repo_type: str, repo_id: str) -> _Repo:
        caller = self._caller()
        with self.hub._lock:
            repo = self.hub._repos.get((repo_type, repo_id))
        visible = repo is not None and (not repo.private or caller is not None)
        if not visible:
            # Anonymous callers get a 401 whether the repo is missing or private, so existence does not leak.
            status = 401 if caller is None else 404
            raise HubError(status, "Repository not found", "RepoNotFound")
        assert repo is not None
        return repo

    def _writable_repo(self, repo_type: str, repo_id: str) -> _Repo:
        self._require_write(repo_id.split("/")[0])
        with self.hub._lock:
            repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    # ----------------------------------------------------------------- routing: main listener

    _API_REPO = re.compile(
        r"^/api/(?P<type>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"
        r"(?:/(?P<op>revision|tree|paths-info|commits|preupload|commit)/(?P<rev>[^/]+)(?P<rest>/.*)?)?$"
    )
    _RESOLVE = re.compile(
        r"^/(?:(?P<type>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"
    )
    _LFS_BATCH = re.compile(
        r"^/(?:(?P<type>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+?)\.git/info/lfs/objects/batch$"
    )

    def _route_main(self, method: str) -> _Response:
        path = self._raw_path
        if path == "/api/whoami-v2" and method == "GET":
            return self._whoami()
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo()
        if path == "/api/repos/delete" and method == "DELETE":
            return self._delete_repo()
        if path == "/api/validate-yaml" and method == "POST":
            return self._validate_yaml()
        if m := self._API_REPO.match(path):
            repo_type = m["type"][:-1]
            repo_id = f"{unquote(m['ns'])}/{unquote(m['name'])}"
            op, rev = m["op"], unquote(m["rev"]) if m["rev"] else None
            rest = unquote(m["rest"][1:]) if m["rest"] else ""
            if op is None and method == "GET":
                return self._repo_info(repo_type, repo_id, "main")
            if op == "revision" and method == "GET" and not rest:
                return self._repo_info(repo_type, repo_id, rev or "main")
            if op == "tree" and method == "GET":
                return self._tree(repo_type, repo_id, rev or "main", rest)
            if op == "paths-info" and method == "POST" and not rest:
                return self._paths_info(repo_type, repo_id, rev or "main")
            if op == "commits" and method == "GET" and not rest:
                return self._list_commits(repo_type, repo_id, rev or "main")
            if op == "preupload" and method == "POST" and not rest:
                return self._preupload(repo_type, repo_id, rev or "main")
            if op == "commit" and method == "POST" and not rest:
                return self._commit(repo_type, repo_id, rev or "main")
        if (m := self._RESOLVE.match(path)) and method in ("GET", "HEAD"):
            repo_type = (m["type"] or "models")[:-1]
            repo_id = f"{unquote(m['ns'])}/{unquote(m['name'])}"
            return self._resolve(repo_type, repo_id, unquote(m["rev"]), unquote(m["path"]), method)
        if (m := self._LFS_BATCH.match(path)) and method == "POST":
            repo_type = (m["type"] or "models")[:-1]
            return self._lfs_batch(repo_type, f"{unquote(m['ns'])}/{unquote(m['name'])}")
        hint = " (the fixture does not speak Xet: set HF_HUB_DISABLE_XET=1 in the client)" if "xet" in path else ""
        raise HubError(404, f"fixture: no route for {method} {path}{hint}")

    # ----------------------------------------------------------------- account, repos

    def _whoami(self) -> _Response:
        caller = self._caller()
        if caller is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return _json(
            {
                "type": "user",
                "id": "0" * 24,
                "name": self.hub.user,
                "fullname": "Test User",
                "isPro": False,
                "orgs": [{"type": "org", "name": o, "roleInOrg": "write"} for o in self.hub.orgs],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": caller}},
            }
        )

    def _create_repo(self) -> _Response:
        payload = self._json_body()
        name = payload.get("name")
        namespace = payload.get("organization") or self.hub.user
        repo_type = payload.get("type") or "model"
        self._require_write(namespace)
        if repo_type not in _REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        if not isinstance(name, str) or not _NAME.match(name) or ".." in name or name.endswith((".git", ".")):
            raise HubError(400, f"Invalid repo name {name!r}")
        visibility = payload.get("visibility")
        private = visibility == "private" if visibility is not None else bool(payload.get("private", False))
        repo_id = f"{namespace}/{name}"
        url = f"{self.hub.endpoint}/{_WEB_PREFIX[repo_type]}{repo_id}"
        with self.hub._lock:
            if (repo_type, repo_id) in self.hub._repos:
                return _json({"error": "You already created this model repo", "url": url}, 409)
            self.hub._create_repo_locked(repo_type, repo_id, private)
        return _json({"url": url, "name": repo_id, "id": "0" * 24})

    def _delete_repo(self) -> _Response:
        payload = self._json_body()
        namespace = payload.get("organization") or self.hub.user
        repo_type = payload.get("type") or "model"
        self._require_write(namespace)
        with self.hub._lock:
            if self.hub._repos.pop((repo_type, f"{namespace}/{payload.get('name')}"), None) is None:
                raise HubError(404, "Repository not found", "RepoNotFound")
        return _json({})

    def _validate_yaml(self) -> _Response:
        content = str(self._json_body().get("content", ""))
        lines = content.splitlines()
        if not lines or lines[0].strip() != "---" or "---" not in (ln.strip() for ln in lines[1:]):
            return _json({"warnings": [{"message": "empty or missing yaml metadata in repo card"}]})
        meta = _parse_card_metadata(content.encode())
        if meta is _INVALID_YAML:
            return _json({"errors": [{"message": "Invalid YAML in the metadata block"}]}, 400)
        if not isinstance(meta, dict):
            return _json({"errors": [{"message": "metadata must be a YAML mapping"}]}, 400)
        return _json({})

    # ----------------------------------------------------------------- reads

    def _repo_info(self, repo_type: str, repo_id: str, rev: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        blobs = self._query.get("blobs", ["false"])[-1].lower() in ("1", "true")
        with self.hub._lock:
            commit = self.hub._resolve_rev(repo, rev)
            files = dict(commit.files)
        siblings = []
        for path, f in sorted(files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib.update(size=len(f.data), blobId=f.blob_oid)
                if f.lfs:
                    sib["lfs"] = {"size": len(f.data), "sha256": f.sha256, "pointerSize": f.pointer_size()}
            siblings.append(sib)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        readme = files.get("README.md")
        meta = _parse_card_metadata(readme.data) if readme is not None else None
        if isinstance(meta, dict):
            info["cardData"] = meta
            tags = meta.get("tags") or []
            info["tags"] = [str(t) for t in (tags if isinstance(tags, list) else [tags])]
            for key in ("library_name", "pipeline_tag"):
                if isinstance(meta.get(key), str):
                    info[key] = meta[key]
                    if key == "library_name" and meta[key] not in info["tags"]:
                        info["tags"].insert(0, meta[key])
        return _json(info)

    @staticmethod
    def _entry(path: str, f: _File) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": f.blob_oid, "size": len(f.data), "path": path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": f.pointer_size()}
        return entry

    @staticmethod
    def _dir_entry(path: str, files: dict[str, _File]) -> dict[str, Any]:
        listing = "\n".join(f"{p} {f.blob_oid}" for p, f in sorted(files.items()) if p.startswith(path + "/"))
        return {"type": "directory", "oid": hashlib.sha1(listing.encode()).hexdigest(), "size": 0, "path": path}

    def _tree(self, repo_type: str, repo_id: str, rev: str, sub: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        recursive = self._query.get("recursive", ["false"])[-1].lower() in ("1", "true")
        with self.hub._lock:
            commit = self.hub._resolve_rev(repo, rev)
            files = dict(commit.files)
        sub = sub.strip("/")
        prefix = sub + "/" if sub else ""
        if sub and sub in files:
            raise HubError(400, f"{sub} is a file, not a directory")
        if sub and not any(p.startswith(prefix) for p in files):
            raise HubError(404, f"Entry not found: {sub}", "EntryNotFound")
        entries: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for path, f in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            # Directories are listed too (recursive listings include every level), as on the Hub.
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                d = prefix + "/".join(parts[:depth])
                if d not in dirs:
                    dirs.add(d)
                    entries.append(self._dir_entry(d, files))
            if recursive or len(parts) == 1:
                entries.append(self._entry(path, f))
        cursor = int(self._query.get("cursor", ["0"])[-1] or 0)
        page = entries[cursor : cursor + self.hub.tree_page_size]
        headers: dict[str, str] = {}
        if cursor + self.hub.tree_page_size < len(entries):
            query = f"recursive={str(recursive).lower()}&expand=false&cursor={cursor + self.hub.tree_page_size}"
            headers["Link"] = f'<{self.hub.endpoint}{self._raw_path}?{query}>; rel="next"'
        return _json(page, headers=headers)

    def _paths_info(self, repo_type: str, repo_id: str, rev: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        form = parse_qs(self._body().decode("utf-8", "replace"), keep_blank_values=True)
        wanted = form.get("paths", []) + form.get("paths[]", [])
        with self.hub._lock:
            files = dict(self.hub._resolve_rev(repo, rev).files)
        out: list[dict[str, Any]] = []
        for path in wanted:
            path = path.strip("/")
            if path in files:
                out.append(self._entry(path, files[path]))
            elif any(p.startswith(path + "/") for p in files):
                out.append(self._dir_entry(path, files))
        return _json(out)

    def _list_commits(self, repo_type: str, repo_id: str, rev: str) -> _Response:
        self._readable_repo(repo_type, repo_id)
        with self.hub._lock:
            history = self.hub.commits(repo_id, rev, repo_type)
        items = [
            {
                "id": c["oid"],
                "title": c["title"],
                "message": c["message"],
                "date": c["date"],
                "authors": [{"user": self.hub.user}],
            }
            for c in history
        ]
        return _json(items)

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str, method: str) -> _Response:
        repo = self._readable_repo(repo_type, repo_id)
        with self.hub._lock:
            commit = self.hub._resolve_rev(repo, rev)
            f = commit.files.get(path)
        base = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes", "Vary": "Origin"}
        if f is None:
            # The commit header lets the client cache the file's absence for that commit.
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        if f.lfs:
            # The Hub redirects LFS files to a signed CDN URL; the client reads size and sha256 off this answer.
            sig = self.hub._sign("GET", repo_type, repo_id, f.sha256)
            location = f"{self.hub.cdn_endpoint}/lfs/{repo_type}/{quote(repo_id)}/{f.sha256}?sig={sig}"
            headers = {
                **base,
                "ETag": f'"{f.blob_oid}"',
                "X-Linked-Etag": f'"{f.sha256}"',
                "X-Linked-Size": str(len(f.data)),
                "Location": location,
            }
            return _Response(302, b"", headers, "text/plain; charset=utf-8")
        headers = {**base, "ETag": f'"{f.blob_oid}"', "Content-Disposition": _disposition(path)}
        return _ranged(self.headers.get("Range"), f.data, headers)

    # ----------------------------------------------------------------- writes

    def _preupload(self, repo_type: str, repo_id: str, rev: str) -> _Response:
        repo = self._writable_repo(repo_type, repo_id)
        payload = self._json_body()
        if self.hub._take_fault("preupload_500"):
            raise HubError(500, "fixture: injected preupload failure")
        if self._query.get("create_pr"):
            raise HubError(400, "fixture: pull requests are not supported")
        with self.hub._lock:
            if rev not in repo.branches:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            files = dict(repo.commits[repo.branches[rev]].files)
        lfs_patterns = self.hub._lfs_matcher(files)
        ignore = [ln.strip() for ln in str(payload.get("gitIgnore") or "").splitlines()]
        ignore = [ln for ln in ignore if ln and not ln.startswith("#")]
        out = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample", ""))
            lfs = self.hub._matches(path, lfs_patterns) or size >= _LFS_SIZE_THRESHOLD or b"\0" in sample
            entry: dict[str, Any] = {
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": self.hub._matches(path, ignore),
            }
            existing = files.get(path)
            if existing is not None:
                # The client compares this with its own oid and drops unchanged files from the commit.
                entry["oid"] = existing.sha256 if existing.lfs else existing.blob_oid
            out.append(entry)
        return _json({"files": out, "commitOid": repo.branches[rev]})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> _Response:
        repo = self._writable_repo(repo_type, repo_id)
        payload = self._json_body()
        if payload.get("operation") != "upload":
            raise HubError(400, "fixture: only the upload operation is supported")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not _SHA256_HEX.match(oid) or not isinstance(size, int) or size < 0:
                error = {"code": 422, "message": "bad object"}
                objects.append({"oid": str(oid), "size": int(size or 0), "error": error})
                continue
            with self.hub._lock:
                present = oid in repo.lfs_objects
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not present:
                sig = self.hub._sign("PUT", repo_type, repo_id, oid, str(size))
                href = f"{self.hub.cdn_endpoint}/lfs-upload/{repo_type}/{quote(repo_id)}/{oid}"
                href += f"?size={size}&sig={sig}"
                entry["actions"] = {"upload": {"href": href, "header": {}, "expires_in": 3600}}
            objects.append(entry)
        return _Response(
            200, json.dumps({"transfer": "basic", "objects": objects}).encode(), {}, "application/vnd.git-lfs+json"
        )

    def _commit(self, repo_type: str, repo_id: str, rev: str) -> _Response:
        repo = self._writable_repo(repo_type, repo_id)
        body = self._body()
        if self._query.get("create_pr"):
            raise HubError(400, "fixture: pull requests are not supported")
        if self.hub._take_fault("commit_500"):
            raise HubError(500, "fixture: injected commit failure")
        header: dict[str, Any] | None = None
        ops: list[tuple[str, dict[str, Any]]] = []
        for raw in body.splitlines():
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                key, value = line["key"], line["value"]
            except (ValueError, KeyError, TypeError) as err:
                raise HubError(400, f"malformed commit line: {err}") from err
            if key == "header":
                header = value
            elif key in ("file", "lfsFile", "deletedFile", "deletedFolder"):
                ops.append((key, value))
            else:
                raise HubError(400, f"fixture: unsupported commit operation {key!r}")
        if header is None or not str(header.get("summary", "")).strip():
            raise HubError(400, "commit header with a summary is required")

        with self.hub._lock:
            if rev not in repo.branches:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            head = repo.branches[rev]
            parent = header.get("parentCommit")
            if parent is not None and parent != head:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            # Build the new tree aside and swap it in only once every operation checked out: all-or-nothing.
            files = dict(repo.commits[head].files)
            for key, value in ops:
                raw_path = value.get("path")
                if key == "deletedFolder" and isinstance(raw_path, str):
                    raw_path = raw_path.rstrip("/")  # the client marks folders with a trailing slash
                path = _check_path(raw_path)
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise HubError(400, f"unsupported encoding for {path}")
                    try:
                        data = base64.b64decode(value.get("content", ""), validate=True)
                    except ValueError as err:
                        raise HubError(400, f"invalid base64 content for {path}") from err
                    if b"\0" in data[:8000] or len(data) >= _LFS_SIZE_THRESHOLD:
                        raise HubError(
                            400,
                            "Your push was rejected because it contains binary files or files over 10 MB "
                            f"not stored with LFS. Offending file: {path}",
                        )
                    files[path] = _File.make(data, lfs=False)
                elif key == "lfsFile":
                    oid = value.get("oid")
                    blob = repo.lfs_objects.get(oid) if isinstance(oid, str) else None
                    if blob is None or ("size" in value and int(value["size"]) != len(blob)):
                        raise HubError(
                            400,
                            "Your push was rejected because an LFS pointer pointed to a file that does not exist. "
                            f"Offending file: {path}",
                        )
                    files[path] = _File.make(blob, lfs=True)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                else:
                    gone = [p for p in files if p.startswith(path + "/")]
                    if not gone:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in gone:
                        del files[p]
            commit = self.hub._add_commit_locked(
                repo, rev, head, files, str(header["summary"]), str(header.get("description") or "")
            )
        if self.hub._take_fault("commit_500_after_apply"):
            raise HubError(500, "fixture: injected failure after the commit was applied")
        url = f"{self.hub.endpoint}/{_WEB_PREFIX[repo_type]}{repo_id}/commit/{commit.oid}"
        return _json({"success": True, "commitUrl": url, "commitOid": commit.oid, "commitMessage": commit.title})

    # ----------------------------------------------------------------- routing: CDN listener

    _CDN_PATH = re.compile(
        r"^/(?P<op>lfs|lfs-upload)/(?P<type>model|dataset|space)/(?P<repo>.+)/(?P<oid>[0-9a-f]{64})$"
    )

    def _route_cdn(self, method: str) -> _Response:
        m = self._CDN_PATH.match(self._raw_path)
        if m is None:
            raise HubError(404, "NoSuchKey")
        repo_type, repo_id, oid = m["type"], unquote(m["repo"]), m["oid"]
        sig = self._query.get("sig", [""])[-1]
        with self.hub._lock:
            repo = self.hub._repos.get((repo_type, repo_id))
        if m["op"] == "lfs-upload" and method == "PUT":
            size = self._query.get("size", [""])[-1]
            if not hmac.compare_digest(sig, self.hub._sign("PUT", repo_type, repo_id, oid, size)):
                raise HubError(403, "SignatureDoesNotMatch")
            data = self._body()
            if self.hub._take_fault("lfs_put_403"):
                raise HubError(403, "fixture: injected upload refusal (expired signature)")
            if self.hub._take_fault("lfs_put_500"):
                raise HubError(500, "fixture: injected upload failure")
            if str(len(data)) != size or hashlib.sha256(data).hexdigest() != oid:
                raise HubError(400, "BadDigest: content does not match the announced oid and size")
            if repo is None:
                raise HubError(404, "NoSuchBucket")
            with self.hub._lock:
                repo.lfs_objects[oid] = data
            return _Response(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}, "text/plain")
        if m["op"] == "lfs" and method in ("GET", "HEAD"):
            if not hmac.compare_digest(sig, self.hub._sign("GET", repo_type, repo_id, oid)):
                raise HubError(403, "AccessDenied")
            with self.hub._lock:
                data = repo.lfs_objects.get(oid) if repo is not None else None
            if data is None:
                raise HubError(404, "NoSuchKey")
            headers = {"ETag": f'"{oid}"', "Content-Disposition": _disposition(oid)}
            return _ranged(self.headers.get("Range"), data, headers, "application/octet-stream")
        raise HubError(405, "MethodNotAllowed")


def _check_path(path: Any) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
        raise HubError(400, f"invalid path {path!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubError(400, f"invalid path {path!r}")
    return path


def _disposition(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name.encode('ascii', 'replace').decode()}\";"


def _ranged(
    range_header: str | None, data: bytes, headers: dict[str, str], ctype: str = "text/plain; charset=utf-8"
) -> _Response:
    """A 200 with the whole body, or a 206 for a single `bytes=a-b` range (how the client resumes downloads)."""
    if range_header:
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
        if m is None or (not m[1] and not m[2]):
            return _Response(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}, ctype)
        if m[1]:
            start = int(m[1])
            end = min(int(m[2]), len(data) - 1) if m[2] else len(data) - 1
        else:
            start, end = max(len(data) - int(m[2]), 0), len(data) - 1
        if start >= len(data) or start > end:
            return _Response(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}, ctype)
        content_range = f"bytes {start}-{end}/{len(data)}"
        return _Response(206, data[start : end + 1], {**headers, "Content-Range": content_range}, ctype)
    return _Response(200, data, headers, ctype)


_INVALID_YAML = object()


def _parse_card_metadata(readme: bytes) -> Any:
    """The YAML block at the top of a card: a dict, None without one, _INVALID_YAML if it does not parse."""
    text = readme.decode("utf-8", "replace")
    m = re.match(r"^\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.DOTALL)
    if m is None:
        return None
    try:
        import yaml  # optional: without PyYAML the server still works, only card metadata goes unchecked
    except ImportError:
        return {}
    try:
        return yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        return _INVALID_YAML
