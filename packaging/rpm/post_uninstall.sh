# osprey-agent %postun: after an upgrade restart the running service with the new binary.
# On erase the data directory /var/lib/osprey is kept (RPM has no purge; remove it by hand).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart osprey-agent.service >/dev/null 2>&1 || :
    fi
fi
