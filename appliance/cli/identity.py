"""`evr user` and `evr apikey`: accounts and the integrations' keys."""

from __future__ import annotations

import argparse
import sys

from appliance.cli.common import cli_actor, open_db
from appliance.config import Settings
from appliance.services.identity import accounts, api_keys, second_factor

# What these commands refuse with a message and exit code 1 rather than a traceback.
FAILURES: tuple[type[Exception], ...] = (accounts.AccountError, api_keys.ApiKeyError)


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    roles = accounts.parse_roles(args.role or [])
    chosen = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    # Hashed before the transaction: `evr serve` may be writing to the same database.
    made = accounts.NewPassword.of(chosen)
    with open_db(settings).session() as session:
        user, password = accounts.create_user(
            session,
            cli_actor(),
            args.username,
            args.name or args.username,
            roles,
            made,
            accounts.PasswordPolicy.from_settings(settings),
            break_glass=args.break_glass,
        )
    print(f"created {user.username} with roles {', '.join(sorted(r.value for r in roles))}")
    if args.break_glass:
        print(f"{user.username} is break-glass: its password works when single sign-on is on")
    if not args.password_stdin:
        print(f"one-time password (shown once): {password}")
    return 0


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
        views = accounts.list_users(session)
    print(f"{'USERNAME':20} {'STATE':9} {'ROLES':40} NAME  (* break-glass)")
    for view in views:
        user = view.user
        state = "disabled" if user.disabled else "active"
        if user.break_glass:
            state += "*"
        roles = ",".join(sorted(r.value for r in view.roles))
        print(f"{user.username:20} {state:9} {roles:40} {user.display_name}")
    return 0


def cmd_user_disable(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
        accounts.set_disabled(session, cli_actor(), args.username, not args.enable)
    print(f"{args.username} {'enabled' if args.enable else 'disabled'}")
    return 0


def cmd_user_reset_password(settings: Settings, args: argparse.Namespace) -> int:
    made = accounts.NewPassword.of()
    with open_db(settings).session() as session:
        user, password = accounts.reset_password(
            session, cli_actor(), args.username, privileged_ok=True, password=made
        )
    print(f"one-time password for {user.username} (shown once): {password}")
    return 0


def cmd_user_reset_factor(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
        user = second_factor.reset(session, cli_actor(), args.username)
    print(
        f"{user.username}'s authenticator app, security keys and recovery codes are removed; "
        "sessions ended"
    )
    return 0


def cmd_user_break_glass(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
        user = accounts.set_break_glass(session, cli_actor(), args.username, not args.off)
    if args.off:
        print(f"{user.username} is no longer break-glass; its sessions ended")
    else:
        print(f"{user.username} is break-glass: its password works when single sign-on is on")
    return 0


def cmd_user_set_roles(settings: Settings, args: argparse.Namespace) -> int:
    roles = accounts.parse_roles(args.roles)
    with open_db(settings).session() as session:
        accounts.set_roles(session, cli_actor(), args.username, roles)
    print(f"{args.username} now has roles {', '.join(sorted(r.value for r in roles))}")
    return 0


def cmd_apikey_create(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
        api_key, key = api_keys.create(session, cli_actor(), args.name)
    print(f"API key {api_key.name} (shown once; send it as 'Authorization: Bearer <key>'):")
    print(key)
    return 0


def cmd_apikey_list(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
        keys = api_keys.list_keys(session)
    print(f"{'NAME':24} {'PREFIX':14} {'STATE':8} LAST USED")
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        print(f"{key.name:24} {key.prefix:14} {state:8} {used}")
    return 0


def cmd_apikey_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
        api_keys.revoke(session, cli_actor(), args.name)
    print(f"API key {args.name} revoked")
    return 0
