#!/bin/bash
# Sets up {{ name }} ({{ host }}) as a rebench_site workstation. Run it as root on that host; it is
# idempotent, so run it again after an upgrade or a change of settings.
# Made by `manage.py workstation_add` or the workstation's page. It holds the worker's broker login:
# keep it as secret as that is, and delete it once it has run. The agent's token comes on the command
# line, once: REBENCH_AGENT_TOKEN=<the token the workstation's page issued> bash setup.sh
set -eu
umask 022

# A scratch root (the tests; a look at what it writes): files go under it, and what would change
# the system (packages, accounts, ownership, services) is printed instead of run.
ROOT="${REBENCH_SETUP_ROOT:-}"
if [ -n "$ROOT" ]; then
    ROOT="$(cd "$ROOT" && pwd)"
elif [ "$(id -u)" -ne 0 ]; then
    echo "Run this as root on {{ host }}: it installs packages, adds users and a systemd unit." >&2
    exit 1
fi

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
system() {
    if [ -n "$ROOT" ]; then
        printf 'would run: %s\n' "$*"
    else
        "$@"
    fi
}
# folder MODE PATH: made if missing, root's, with MODE (also when it was there with another).
folder() {
    install -d -m "$1" "$ROOT$2"
    chmod "$1" "$ROOT$2"
    system chown root:root "$ROOT$2"
}
# file MODE PATH: the text on stdin replaces PATH whole (written beside it, then moved over it).
file() {
    umask 077
    cat > "$ROOT$2.new"
    umask 022
    chmod "$1" "$ROOT$2.new"
    system chown root:root "$ROOT$2.new"
    mv -f "$ROOT$2.new" "$ROOT$2"
}
# Attempt users must pass through every folder above their workspace and the Python they run.
reachable() {
    path="$1"
    while [ "$path" != / ] && [ -n "$path" ]; do
        if [ -d "$ROOT$path" ] && [ $((0$(stat -c %a "$ROOT$path") & 1)) -eq 0 ]; then
            warn "attempt users can't enter $path (scoring would fail with \"Permission denied\"): chmod o+x $path"
        fi
        path="$(dirname "$path")"
    done
}

say "Debian packages"
system env DEBIAN_FRONTEND=noninteractive apt-get update -q
system env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    tmux bubblewrap python3 python3-venv passwd procps ca-certificates openssh-client{% if backend == "ssh" %} openssh-server{% endif %}

say "The terminal holders' user: {{ holder_user }} (runs each terminal's PTY and its recording)"
if ! getent passwd {{ holder_user }} >/dev/null; then
    system useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {{ holder_user }}
fi

say "The group protected (scorers only)"
if ! getent group protected >/dev/null; then
    system groupadd --system protected
fi

{% if attempt_users %}say "Per-attempt users: {{ prefix }}<attempt id>, made as each attempt starts"
# The worker makes each one with useradd (its own group, a 0700 home under /home) and expires it
# with usermod: those must be here, and no account named like one may be in a group that gives it more.
for tool in useradd usermod; do
    if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
        warn "$tool is missing: attempts can't get their own users (apt-get install passwd)"
    fi
done
[ -d "$ROOT/home" ] || install -d -m 0755 "$ROOT/home"
PRIVILEGED=" {{ privileged_groups }} "
getent passwd | cut -d: -f1 | while read -r account; do
    case "$account" in
        {{ prefix }}[0-9]*)
            for group in $(id -nG "$account"); do
                case "$PRIVILEGED" in
                    *" $group "*) warn "$account is in $group: the attempt of that id will be refused; remove it from $group" ;;
                esac
            done
            ;;
    esac
done
{% else %}say "The shared attempt user: {{ local_user }} (TERMINAL_ATTEMPT_USERS is off)"
if ! getent passwd {{ local_user }} >/dev/null; then
    system useradd --system --create-home --shell /bin/bash {{ local_user }}
fi
{% endif %}
say "Data folders (root's; attempt users may cross, not list, them)"
folder 0711 {{ folders.data }}
folder 0700 {{ folders.locks }}
folder 0711 {{ folders.workspaces }}
folder 0711 {{ folders.terminals }}
folder 0755 {{ folders.tools }}
folder 0711 {{ folders.protected }}
reachable {{ folders.workspaces }}
reachable {{ checkout }}/.venv

say "The checkout: {{ checkout }}"
CHECKOUT_READY=yes
if [ ! -x "$ROOT{{ checkout }}/.venv/bin/celery" ]; then
    CHECKOUT_READY=no
    warn "no {{ checkout }}/.venv/bin/celery: copy the site's checkout to the same path here and run make install (or .venv/bin/pip install -r requirements.txt); then run this again to start the worker"
fi

say "The worker's environment: {{ env_file }} (root's alone, 0600)"
folder 0755 /etc/rebench
file 0600 {{ env_file }} <<'REBENCH_ENV'
# rebench_site's workstation agent on {{ name }}: the settings it shares with the web host, its
# broker login and the site's address. No database URL and no site secret: the agent has neither.
{% for line in env_lines %}{{ line }}
{% endfor %}REBENCH_ENV

say "The agent's token: {{ token_file }} (root's alone, 0600)"
if [ -n "${REBENCH_AGENT_TOKEN:-}" ]; then
    case "$REBENCH_AGENT_TOKEN" in
        *[!A-Za-z0-9_-]*) echo "REBENCH_AGENT_TOKEN is not a token the site issued (letters, digits, _ and -)." >&2; exit 1 ;;
    esac
    printf 'WORKSTATION_AGENT_TOKEN="%s"\n' "$REBENCH_AGENT_TOKEN" | file 0600 {{ token_file }}
elif [ ! -f "$ROOT{{ token_file }}" ]; then
    warn "no agent token yet: issue one on {{ name }}'s page, then run this again as REBENCH_AGENT_TOKEN=<token> bash setup.sh"
fi

say "The worker: {{ unit_name }}, on the queue {{ queue }}"
folder 0755 /etc/systemd/system
file 0644 /etc/systemd/system/{{ unit_name }} <<'REBENCH_UNIT'
[Unit]
Description=rebench_site worker of workstation {{ name }} (queue {{ queue }})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# Root: the sandbox switches to attempt users and makes cgroups.
User=root
WorkingDirectory={{ checkout }}
EnvironmentFile={{ env_file }}
EnvironmentFile=-{{ token_file }}
ExecStart={{ checkout }}/.venv/bin/celery -A workstation.agent worker -Q {{ queue }} -n {{ name }}@%H -l INFO --without-mingle --without-gossip
Restart=always
RestartSec=5
# Only the worker stops with the unit: the keepers and terminal holders it started outlive it, so a
# restart or an upgrade leaves running attempts running.
KillMode=process
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
REBENCH_UNIT
{% if backend == "ssh" %}
say "The gate: {{ gate }}, the one command the site's SSH key runs here, as {{ gate_login }}"
folder 0755 /usr/local/sbin
file 0755 {{ gate }} <<'REBENCH_GATE'
#!/bin/sh
# rebench_site's gate (workstation/gate.py): the forced command of the site's key. It does one of the
# workstation backend's verbs, named in SSH_ORIGINAL_COMMAND, on this host's attempts; nothing else.
cd {{ checkout }} && exec {{ checkout }}/.venv/bin/python -m workstation.gate --env {{ env_file }}
REBENCH_GATE
{% if gate_line %}GATE_HOME="$(getent passwd {{ gate_login }} | cut -d: -f6)"
if [ -n "$ROOT" ] || [ -z "$GATE_HOME" ]; then GATE_HOME=/root; fi
install -d -m 0700 "$ROOT$GATE_HOME/.ssh"
KEYS="$ROOT$GATE_HOME/.ssh/authorized_keys"
[ -f "$KEYS" ] || : > "$KEYS"
# The site's line, replaced whole on each run; every other line is left as it was.
{ grep -v ' {{ gate_key_comment }}$' "$KEYS" || true; echo '{{ gate_line }}'; } > "$KEYS.new"
chmod 0600 "$KEYS.new"
mv -f "$KEYS.new" "$KEYS"
{% else %}warn "the site's key (TERMINAL_SSH_KEY) could not be read: put its public line in ~{{ gate_login }}/.ssh/authorized_keys as command=\"{{ gate }}\",restrict <key>"
{% endif %}{% if gate_login == "root" %}if command -v sshd >/dev/null && [ -z "$ROOT" ] && sshd -T 2>/dev/null | grep -qi '^permitrootlogin no$'; then
    warn "sshd's PermitRootLogin is no: set it to forced-commands-only (or prohibit-password) for the site's gate"
fi
{% endif %}say "This host's SSH keys: compare with the fingerprints the web host recorded in its known_hosts"
for key in "$ROOT"/etc/ssh/ssh_host_*_key.pub; do
    if [ -f "$key" ] && command -v ssh-keygen >/dev/null; then
        ssh-keygen -l -f "$key"
    fi
done
{% endif %}
system systemctl daemon-reload
system systemctl enable {{ unit_name }}
if [ "$CHECKOUT_READY" = yes ]; then
    system systemctl restart {{ unit_name }}
    say "Done: {{ name }} turns active on the site's Workstations page at its worker's first heartbeat."
else
    say "Done, but the worker can't start until the checkout is here (see the warning above)."
fi
