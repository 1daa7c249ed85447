"""CLI approvals prove who approves (issue 13, item 5): OS account, SSH signature, trusted names.

Real ``ssh-keygen`` makes and checks the signatures; the decisions land in real databases
(SQLite, and PostgreSQL where configured). Tests run as one OS account (root in CI), so the
account running them is mapped in ``[approval.os_users]`` where a test needs it proven.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from broadcaster.identity import os_account
from tests.conftest import Cli, set_database_url, set_trust_cli_names

ANNA, JENS, ANN = "anna.hasselbom", "jens.odevall", "ann.willsund"
ME = os_account()


@pytest.fixture(scope="module", autouse=True)
def openssh() -> None:
    """Skip without ssh-keygen; in CI (BROADCASTER_REQUIRE_SSH_KEYGEN=1) fail instead."""
    if shutil.which("ssh-keygen") is None:
        message = "ssh-keygen (the OpenSSH client) is not installed"
        if os.environ.get("BROADCASTER_REQUIRE_SSH_KEYGEN") == "1":
            pytest.fail(message)
        pytest.skip(message)


# ---------------------------------------------------------------------------------------------
# Keys, signatures and workspaces


@pytest.fixture(scope="module")
def keys(openssh: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Private key files of two approvers (ed25519, no passphrase), made by ssh-keygen."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for person in (ANNA, JENS):
        path = folder / person
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{person}@laptop", "-f", path],
            check=True,
            timeout=30,
        )
        made[person] = path
    return made


def public(key: Path) -> str:
    return Path(f"{key}.pub").read_text(encoding="utf-8").strip()


def fingerprint(key: Path) -> str:
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(Path(f"{key}.pub"))],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return listed.stdout.split()[1]


def ssh_sign(key: Path, message: str, out: Path, namespace: str = "broadcaster") -> Path:
    """``printf '%s' MESSAGE | ssh-keygen -Y sign -f KEY -n NAMESPACE > OUT`` (the README's)."""
    signed = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", namespace],
        input=message.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    )
    out.write_bytes(signed.stdout)
    return out


def configure(
    workspace_dir: Path,
    *,
    os_users: dict[str, str] | None = None,
    ssh_keys: dict[str, str] | None = None,
) -> None:
    """Add [approval.os_users] and [approval.ssh_keys] to the workspace's broadcaster.toml."""
    path = workspace_dir / "broadcaster.toml"
    tables = ""
    for name, table in (("os_users", os_users), ("ssh_keys", ssh_keys)):
        if table:
            tables += f"[approval.{name}]\n"
            tables += "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in table.items())
            tables += "\n"
    text = path.read_text(encoding="utf-8").replace(
        "[[organisations]]", tables + "[[organisations]]", 1
    )
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def proving(workspace_dir: Path, database_url: str, keys: dict[str, Path]) -> Path:
    """A workspace on each test database: Anna has an SSH key, this OS account is Ann."""
    set_database_url(workspace_dir, database_url)
    configure(workspace_dir, os_users={ANN: ME}, ssh_keys={ANNA: public(keys[ANNA])})
    return workspace_dir


def to_approve(announcement: int, content_hash: str) -> str:
    """The exact words an approver signs (README: who approves at the command line)."""
    return f"approve {announcement} {content_hash}"


def pending(cli: Cli, workspace_dir: Path) -> tuple[int, str]:
    """An announcement written by the officer and submitted, then names no longer trusted."""
    made = cli("draft", "-t", "Vattenläcka", "-b", "Koka vattnet.", "--to", "borgholm", "--json")
    assert made.exit_code == 0, made.stderr
    announcement = int(made.json()["id"])
    assert cli("submit", str(announcement)).exit_code == 0
    set_trust_cli_names(workspace_dir, False)
    return announcement, str(made.json()["content_hash"])


def as_me(workspace_dir: Path, **env: str) -> Cli:
    """The CLI with no BROADCASTER_USER: the person is whoever the OS account proves."""
    return Cli(cwd=workspace_dir, env=dict(env))


def decisions(cli: Cli, announcement: int) -> list[dict[str, Any]]:
    shown = cli("show", str(announcement), "--json")
    assert shown.exit_code == 0, shown.stderr
    return list(shown.json()["decisions"])


def events(cli: Cli, action: str) -> list[dict[str, Any]]:
    audit = cli("audit", "--json")
    assert audit.exit_code == 0, audit.stderr
    return [e for e in audit.json()["events"] if e["action"] == action]


def refused(result: Any, *words: str) -> None:
    """Exit 1 with the JSON error code ``identity`` and every word in its message."""
    assert result.exit_code == 1, result.stdout
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "identity", error
    for word in words:
        assert word in error["message"], (word, error["message"])


# ---------------------------------------------------------------------------------------------
# Proven by the OS account


def test_an_approver_proven_by_their_os_account_approves_and_the_proof_is_kept(
    cli: Cli, proving: Path
) -> None:
    announcement, _ = pending(cli, proving)
    result = as_me(proving)("approve", str(announcement), "--json")
    assert result.exit_code == 0, result.stderr
    proof = {"method": "os_user", "os_user": ME}
    assert result.json()["approved_by"] == [ANN] and result.json()["proof"] == proof
    assert [(d["person"], d["proof"]) for d in decisions(cli, announcement)] == [(ANN, proof)]
    assert [e["details"]["proof"] for e in events(cli, "approved")] == [proof]
    shown = cli("show", str(announcement))
    assert f"proven by OS account {ME}" in shown.stdout
    # Naming oneself is the same claim, proven the same way.
    again = as_me(proving)("approve", str(announcement), "--as", ANN, "--json")
    assert again.exit_code == 0 and again.json()["counted"] is False


def test_as_someone_else_is_refused_without_trust_and_the_refusal_is_audited(
    cli: Cli, proving: Path
) -> None:
    announcement, _ = pending(cli, proving)
    # $USER and $LOGNAME are whatever the shell says: they prove nothing.
    spoofed = as_me(proving, USER=ANNA, LOGNAME=ANNA)
    result = spoofed("approve", str(announcement), "--as", ANNA, "--json")
    refused(result, ANNA, ME, "[approval.os_users]", "--sign-with", "trust_cli_names")
    by_env = as_me(proving, BROADCASTER_USER=JENS)("approve", str(announcement), "--json")
    refused(by_env, "BROADCASTER_USER names jens.odevall")
    rejected = cli("reject", str(announcement), "-r", "nej", "--as", ANNA, "--json")
    refused(rejected, f"reject announcement {announcement}")
    assert decisions(cli, announcement) == []
    assert cli("status", str(announcement), "--json").json()["state"] == "pending_approval"
    audited = events(cli, "identity_refused")
    assert [(e["actor"], e["announcement_id"]) for e in audited] == [
        (ANNA, announcement),
        (JENS, announcement),
        (ANNA, announcement),
    ]
    assert audited[0]["details"]["os_user"] == ME
    assert audited[0]["details"]["named_by"] == "--as"


def test_a_mapped_person_is_proven_only_by_their_own_account(cli: Cli, workspace_dir: Path) -> None:
    # Anna's account is "anna" here: an account named like her proves nothing.
    configure(workspace_dir, os_users={ANNA: "anna"})
    announcement, _ = pending(cli, workspace_dir)
    refused(as_me(workspace_dir)("approve", str(announcement), "--as", ANNA, "--json"), "'anna'")


def test_trusted_names_are_believed_and_say_so(cli: Cli, workspace_dir: Path) -> None:
    announcement, _ = pending(cli, workspace_dir)
    set_trust_cli_names(workspace_dir, True)
    result = cli("approve", str(announcement), "--as", ANNA, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["proof"] == {"method": "trusted_name", "os_user": ME}
    audit = cli("audit", str(announcement))
    assert "name trusted" in cli("show", str(announcement)).stdout
    assert audit.exit_code == 0


def test_an_exercise_trusts_names_unless_the_workspace_says_otherwise(
    cli: Cli, workspace_dir: Path
) -> None:
    announcement, _ = pending(cli, workspace_dir)
    set_trust_cli_names(workspace_dir, None)
    exercise = Cli(cwd=workspace_dir, env={"BROADCASTER_EXERCISE": "1"})
    result = exercise("approve", str(announcement), "--as", ANNA, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["proof"]["method"] == "trusted_name"
    set_trust_cli_names(workspace_dir, False)
    refused(exercise("approve", str(announcement), "--as", JENS, "--json"), JENS)


def test_outside_an_exercise_names_are_not_trusted_by_default(
    cli: Cli, workspace_dir: Path
) -> None:
    announcement, _ = pending(cli, workspace_dir)
    set_trust_cli_names(workspace_dir, None)
    refused(cli("approve", str(announcement), "--as", ANNA, "--json"), ANNA)


# ---------------------------------------------------------------------------------------------
# Proven by an SSH signature over the content hash


def test_a_valid_ssh_signature_approves_and_is_audited_for_anyone_to_check_again(
    cli: Cli, proving: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    announcement, content_hash = pending(cli, proving)
    message = to_approve(announcement, content_hash)
    assert cli("show", str(announcement), "--json").json()["to_sign"]["approve"] == message
    assert f"  {message}\n" in cli("show", str(announcement)).stdout
    signature = ssh_sign(keys[ANNA], message, tmp_path / "approval.sig")
    result = cli(
        "approve", str(announcement), "--hash", content_hash[:7], "--as", ANNA,
        "--signature", str(signature), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout
    proof = result.json()["proof"]
    assert proof["method"] == "ssh" and proof["namespace"] == "broadcaster"
    assert proof["key"] == fingerprint(keys[ANNA])
    assert proof["signed"] == message and proof["os_user"] == ME
    assert [(d["person"], d["proof"]) for d in decisions(cli, announcement)] == [(ANNA, proof)]
    (event,) = events(cli, "approved")
    assert event["actor"] == ANNA and event["details"]["proof"] == proof
    assert f"proven by SSH key {proof['key']}" in cli("audit", str(announcement), "--wide").stdout
    # The audit export holds what an auditor needs to check the signature without us.
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"{ANNA} {public(keys[ANNA])}\n", encoding="utf-8")
    exported = tmp_path / "exported.sig"
    exported.write_text(event["details"]["proof"]["signature"], encoding="utf-8")
    checked = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            allowed,
            "-I",
            ANNA,
            "-n",
            "broadcaster",
            "-s",
            exported,
        ],
        input=message.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    # ... and what anyone can read there cannot be replayed to reject as Anna.
    replayed = cli(
        "reject", str(announcement), "-r", "Nej", "--as", ANNA, "--signature", str(exported),
        "--json",
    )  # fmt: skip
    refused(replayed, "a signature to approve, not to reject")
    assert [d["decision"] for d in decisions(cli, announcement)] == ["approve"]


def test_sign_with_runs_ssh_keygen_for_the_approver(
    cli: Cli, proving: Path, keys: dict[str, Path]
) -> None:
    announcement, _ = pending(cli, proving)
    result = cli(
        "approve", str(announcement), "--as", ANNA, "--sign-with", str(keys[ANNA]), "--json"
    )
    assert result.exit_code == 0, result.stdout
    assert result.json()["proof"]["key"] == fingerprint(keys[ANNA])


def test_a_signed_rejection_keeps_its_proof(cli: Cli, proving: Path, keys: dict[str, Path]) -> None:
    announcement, _ = pending(cli, proving)
    result = cli(
        "reject", str(announcement), "-r", "Fel nummer", "--as", ANNA,
        "--sign-with", str(keys[ANNA]), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout
    (decision,) = decisions(cli, announcement)
    assert decision["decision"] == "reject" and decision["proof"]["method"] == "ssh"
    assert "proven by SSH key" in cli("show", str(announcement)).stdout


def test_a_signature_by_another_key_is_refused(
    cli: Cli, proving: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    announcement, content_hash = pending(cli, proving)
    message = to_approve(announcement, content_hash)
    jens_signed = ssh_sign(keys[JENS], message, tmp_path / "approval.sig")
    result = cli(
        "approve", str(announcement), "--as", ANNA, "--signature", str(jens_signed), "--json"
    )
    refused(result, fingerprint(keys[JENS]), fingerprint(keys[ANNA]), "not anna.hasselbom's key")
    assert decisions(cli, announcement) == []
    assert len(events(cli, "identity_refused")) == 1


def test_a_signature_over_the_previous_revisions_hash_is_refused(
    cli: Cli, proving: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    announcement, first_hash = pending(cli, proving)
    old = ssh_sign(keys[ANNA], to_approve(announcement, first_hash), tmp_path / "approval.sig")
    set_trust_cli_names(proving, True)
    assert cli("edit", str(announcement), "-b", "Koka vattnet i fem minuter.").exit_code == 0
    assert cli("submit", str(announcement)).exit_code == 0
    set_trust_cli_names(proving, False)
    current = cli("status", str(announcement), "--json").json()["content_hash"]
    result = cli("approve", str(announcement), "--as", ANNA, "--signature", str(old), "--json")
    refused(result, "revision 1", first_hash, current)
    assert decisions(cli, announcement) == []


def test_a_signature_over_other_bytes_is_refused(
    cli: Cli, proving: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    announcement, content_hash = pending(cli, proving)
    message = to_approve(announcement, content_hash)
    cases = {
        "does not verify": to_approve(announcement, "0" * 64),  # another hash altogether
        "newline": message + "\n",  # what `echo ... | ssh-keygen ...` signs
        "the bare hash": content_hash,
        "a signature to reject, not to approve": f"reject {announcement} {content_hash}",
        "does not verify over": to_approve(announcement + 1, content_hash),
    }
    for words, other in cases.items():
        signature = ssh_sign(keys[ANNA], other, tmp_path / "approval.sig")
        result = cli(
            "approve", str(announcement), "--as", ANNA, "--signature", str(signature), "--json"
        )
        refused(result, words, f"printf '%s' '{message}'")
    assert decisions(cli, announcement) == []


def test_a_signature_in_another_namespace_is_refused(
    cli: Cli, proving: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    announcement, content_hash = pending(cli, proving)
    # A git commit signature (namespace "git") must not approve a crisis message.
    message = to_approve(announcement, content_hash)
    signature = ssh_sign(keys[ANNA], message, tmp_path / "approval.sig", namespace="git")
    result = cli(
        "approve", str(announcement), "--as", ANNA, "--signature", str(signature), "--json"
    )
    refused(result, "'git'", "-n broadcaster")
    assert decisions(cli, announcement) == []


def test_a_person_without_a_key_cannot_sign(
    cli: Cli, proving: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    announcement, content_hash = pending(cli, proving)
    signature = ssh_sign(keys[JENS], to_approve(announcement, content_hash), tmp_path / "a.sig")
    result = cli(
        "approve", str(announcement), "--as", JENS, "--signature", str(signature), "--json"
    )
    refused(result, "jens.odevall has no SSH key in [approval.ssh_keys]")


def test_a_hash_that_disagrees_with_the_signature_is_refused(
    cli: Cli, proving: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    announcement, content_hash = pending(cli, proving)
    signature = ssh_sign(keys[ANNA], to_approve(announcement, content_hash), tmp_path / "a.sig")
    other = "f" * 7 if not content_hash.startswith("f" * 7) else "0" * 7
    result = cli(
        "approve", str(announcement), "--hash", other, "--as", ANNA,
        "--signature", str(signature), "--json",
    )  # fmt: skip
    assert result.exit_code == 1
    assert content_hash in result.json()["error"]["message"]
    assert decisions(cli, announcement) == []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not a signature at all\n", "is not an SSH signature"),
        (
            "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n",
            "damaged SSH signature",
        ),
        ("-----BEGIN SSH SIGNATURE-----\n!!!\n-----END SSH SIGNATURE-----\n", "damaged"),
    ],
    ids=["text", "truncated", "not-base64"],
)
def test_a_malformed_signature_file_is_bad_input(
    cli: Cli, workspace_dir: Path, keys: dict[str, Path], tmp_path: Path, content: str, words: str
) -> None:
    configure(workspace_dir, ssh_keys={ANNA: public(keys[ANNA])})
    announcement, _ = pending(cli, workspace_dir)
    bad = tmp_path / "approval.sig"
    bad.write_text(content, encoding="utf-8")
    result = cli("approve", str(announcement), "--as", ANNA, "--signature", str(bad), "--json")
    assert result.exit_code == 2, result.stdout
    message = result.json()["error"]["message"]
    assert words in message and "ssh-keygen -Y sign" in message
    assert decisions(cli, announcement) == []


def test_missing_or_conflicting_signature_options_are_bad_input(
    cli: Cli, workspace_dir: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    configure(workspace_dir, ssh_keys={ANNA: public(keys[ANNA])})
    announcement, _ = pending(cli, workspace_dir)
    missing = cli(
        "approve", str(announcement), "--as", ANNA, "--signature", str(tmp_path / "no.sig")
    )
    assert missing.exit_code == 2 and "cannot read it" in missing.stderr
    both = cli(
        "approve", str(announcement), "--as", ANNA,
        "--signature", str(tmp_path / "no.sig"), "--sign-with", str(keys[ANNA]),
    )  # fmt: skip
    assert both.exit_code == 2 and "not both" in both.stderr
    no_key = cli("approve", str(announcement), "--as", ANNA, "--sign-with", str(tmp_path / "k"))
    assert no_key.exit_code == 2 and "no such key file" in no_key.stderr


def test_a_key_the_configuration_cannot_read_refuses_with_a_pointer_to_check(
    cli: Cli, workspace_dir: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    configure(workspace_dir, ssh_keys={ANNA: "ssh-ed25519 not-base64"})
    announcement, content_hash = pending(cli, workspace_dir)
    signature = ssh_sign(keys[ANNA], to_approve(announcement, content_hash), tmp_path / "a.sig")
    result = cli(
        "approve", str(announcement), "--as", ANNA, "--signature", str(signature), "--json"
    )
    refused(result, "cannot be read", "broadcaster check")


# ---------------------------------------------------------------------------------------------
# The author of a draft or an edit


def test_the_author_is_proven_like_an_approver(cli: Cli, workspace_dir: Path) -> None:
    configure(workspace_dir, os_users={"lena.kommunikator": ME})
    set_trust_cli_names(workspace_dir, False)
    me = as_me(workspace_dir)
    made = me("draft", "-t", "Vatten", "-b", "Koka vattnet.", "--to", "borgholm", "--json")
    assert made.exit_code == 0, made.stdout
    announcement = str(made.json()["id"])
    refused(cli("draft", "-t", "x", "-b", "y", "--json"), "cannot write a draft as kommunikator")
    refused(cli("edit", announcement, "-b", "Annat.", "--as", ANNA, "--json"), "edit announcement")
    assert me("edit", announcement, "-b", "Koka vattnet länge.").exit_code == 0
    set_trust_cli_names(workspace_dir, True)
    assert cli("edit", announcement, "-b", "Koka vattnet i fem minuter.").exit_code == 0
    audit = {e["action"] + str(e["revision"]): e for e in cli("audit", "--json").json()["events"]}
    assert audit["drafted1"]["actor"] == "lena.kommunikator"
    assert audit["drafted1"]["details"]["proof"] == {"method": "os_user", "os_user": ME}
    assert audit["edited2"]["details"]["proof"]["method"] == "os_user"
    assert audit["edited3"]["actor"] == "kommunikator"
    assert audit["edited3"]["details"]["proof"] == {"method": "trusted_name", "os_user": ME}
    assert len(events(cli, "identity_refused")) == 2
    listed = cli("list", "--json").json()["announcements"]
    assert [a["revision"] for a in listed] == [3]  # the refused draft and edit changed nothing


# ---------------------------------------------------------------------------------------------
# `broadcaster check` and the configuration


def check(cli: Cli) -> dict[str, Any]:
    result = cli("check", "--json")
    assert result.exit_code == 0, result.stdout  # warnings do not fail the check
    return dict(result.json())


def test_check_warns_when_names_are_trusted_outside_an_exercise(
    cli: Cli, workspace_dir: Path
) -> None:
    (warning,) = check(cli)["warnings"]
    assert "trust_cli_names = true outside an exercise" in warning
    assert "warn" in cli("check").stdout
    exercise = Cli(cwd=workspace_dir, env={"BROADCASTER_EXERCISE": "1"})
    assert exercise("check", "--json").json()["warnings"] == []
    set_trust_cli_names(workspace_dir, None)
    assert check(cli)["warnings"] == []


def test_check_reads_every_ssh_key_and_the_names_of_the_mappings(
    cli: Cli, workspace_dir: Path, keys: dict[str, Path]
) -> None:
    set_trust_cli_names(workspace_dir, False)
    configure(
        workspace_dir,
        os_users={ANN: ME, "ana.hasselbom": "anna"},
        ssh_keys={
            ANNA: public(keys[ANNA]),
            JENS: "ssh-ed25519 AAAA-not-a-key",
            "kommunikator": public(keys[JENS]),
        },
    )
    document = check(cli)
    warnings = "\n".join(document["warnings"])
    assert "[approval.os_users] 'ana.hasselbom' is neither" in warnings
    assert "[approval.ssh_keys] 'jens.odevall': not a usable public key line" in warnings
    assert "[approval.ssh_keys] 'kommunikator' is not in [approval] approvers" in warnings
    assert len(document["warnings"]) == 3
    assert f"ssh-ed25519 key {fingerprint(keys[ANNA])}" in "\n".join(document["checked"])


def test_one_os_account_cannot_prove_two_people(cli: Cli, workspace_dir: Path) -> None:
    configure(workspace_dir, os_users={ANNA: "delad", JENS: "delad"})
    result = cli("check", "--json")
    assert result.exit_code == 2
    assert "an account can prove only one person" in result.stdout


def test_without_ssh_keygen_a_signature_cannot_be_checked_and_nothing_changes(
    cli: Cli, workspace_dir: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    configure(workspace_dir, ssh_keys={ANNA: public(keys[ANNA])})
    announcement, content_hash = pending(cli, workspace_dir)
    signature = ssh_sign(keys[ANNA], to_approve(announcement, content_hash), tmp_path / "a.sig")
    no_openssh = Cli(cwd=workspace_dir, env={"PATH": str(tmp_path / "empty")})
    result = no_openssh(
        "approve", str(announcement), "--as", ANNA, "--signature", str(signature), "--json"
    )
    assert result.exit_code == 1
    assert "install the OpenSSH client" in result.json()["error"]["message"]
    assert decisions(cli, announcement) == []


def test_a_signed_decision_on_a_draft_is_refused_before_signing(
    cli: Cli, workspace_dir: Path, keys: dict[str, Path]
) -> None:
    configure(workspace_dir, ssh_keys={ANNA: public(keys[ANNA])})
    made = cli("draft", "-t", "Vatten", "-b", "Koka vattnet.", "--to", "borgholm", "--json")
    announcement = str(made.json()["id"])
    result = cli("approve", announcement, "--as", ANNA, "--sign-with", str(keys[ANNA]), "--json")
    assert result.exit_code == 1
    assert "submit it first" in result.json()["error"]["message"]
