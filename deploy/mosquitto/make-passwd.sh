#!/bin/sh
# Build the mosquitto password file for an office broker.
#   make-passwd.sh OUTDIR USER...      e.g. make-passwd.sh /etc/mosquitto/edge central desk-01 kiosk-01
# Each user's password is kept in OUTDIR/secrets/USER.password (0600; created with a random
# password the first time, reused after), so running it again with more users keeps the old
# passwords. Copy a device's password into the `[provision] broker_password` key of the edge.toml
# on its SD card. OUTDIR/passwd is rebuilt from the secrets with mosquitto_passwd -U (hashed).
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 OUTDIR USER..." >&2
    exit 2
fi
outdir=$1
shift
command -v mosquitto_passwd >/dev/null 2>&1 || { echo "$0: mosquitto_passwd not found (apt install mosquitto)" >&2; exit 1; }

umask 077
mkdir -p "$outdir/secrets"
for user in "$@"; do
    # The ACL's %u fills a whole topic level: + # / or upper case would break it (and the config
    # loader refuses such device ids).
    if ! printf '%s\n' "$user" | grep -Eq '^[a-z0-9][a-z0-9-]{0,62}$'; then
        echo "$0: bad user name '$user': expected [a-z0-9-], 1-63 characters, starting with a letter or digit" >&2
        exit 1
    fi
    secret="$outdir/secrets/$user.password"
    if [ ! -s "$secret" ]; then
        # 32 characters from [A-Za-z0-9]: about 190 bits.
        LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$secret"
        echo "$0: new password for $user in $secret" >&2
    fi
done

plain=$(mktemp "$outdir/.passwd.XXXXXX")
trap 'rm -f "$plain"' EXIT
for secret in "$outdir"/secrets/*.password; do
    user=$(basename "$secret" .password)
    printf '%s:%s\n' "$user" "$(cat "$secret")" >>"$plain"
done
mosquitto_passwd -U "$plain"
chmod 0640 "$plain"
mv "$plain" "$outdir/passwd"
trap - EXIT
echo "$0: wrote $outdir/passwd ($(wc -l <"$outdir/passwd") users)" >&2
