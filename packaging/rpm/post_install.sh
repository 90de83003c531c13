# osprey-agent %post: system user, data directory, then enable and start on first install.
systemd-sysusers /usr/lib/sysusers.d/osprey-agent.conf >/dev/null 2>&1 || :
systemd-tmpfiles --create /usr/lib/tmpfiles.d/osprey-agent.conf >/dev/null 2>&1 || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl enable --now osprey-agent.service >/dev/null 2>&1 || :
    fi
fi
