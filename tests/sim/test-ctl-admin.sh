#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# What an admin reaches for (issue 18), through the real vtpmd-ctl and real
# tpm2-tools in a simulated guest, one check per defect fixed:
#  1. export/import carries the EK records: the imported vTPM shows its EK
#     hashes and certificates, and a reset keeps its persistent EKs;
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

# vtpm-sim starts $VTPMD with --platform sim:DIR: the wrapper adds the control
# socket DIR/control and DIR.extra's arguments.
cat >"$SIMDIR/vtpmd-wrap" <<EOF
#!/bin/sh
dir=
for a in "\$@"; do case "\$a" in sim:*) dir=\${a#sim:} ;; esac; done
extra=
[ -f "\$dir.extra" ] && extra=\$(cat "\$dir.extra")
exec "$VTPMD" --control "\$dir/control" \$extra "\$@"
EOF
chmod +x "$SIMDIR/vtpmd-wrap"
export VTPMD="$SIMDIR/vtpmd-wrap"
export VTPM_SIM_CONNECT_TIMEOUT=10
export VTPMD_CTL_KDF_ITERATIONS=20000 # the default works too; this keeps the test quick
CTL=$VTPMD_CTL
H=$SIMDIR/h
W=$SIMDIR/work
on_exit() {
	# The host lives below SIMDIR, so cleanup's own stop of SIMDIR does not find it.
	"$VTPM_SIM" stop --dir "$H" >/dev/null 2>&1
	cleanup
}
trap on_exit EXIT
mkdir -p "$W"

pyjson() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
field() { "$CTL" --json show "$1" | pyjson "v=d.get('$2'); print('' if v is None else v)"; }

if ! "$VTPM_SIM" start --dir "$H" --guests 1 >"$W/start.out" 2>&1; then
	sed 's/^/# /' "$W/start.out"
	fail "vtpm-sim start"
	finish
fi
export VTPMD_CONTROL=$H/control
ok "simulated host running with guest1"

# ---- defect 1: export/import keeps the EK records ----
if "$CTL" --json create --ek both --ek-cert --platform-cert >"$W/create.json" 2>"$W/create.err"; then
	ok "create --ek both --ek-cert --platform-cert"
else
	fail "create --ek both --ek-cert --platform-cert: $(cat "$W/create.err")"
fi
U=$(pyjson "print(d['uuid'])" <"$W/create.json")
RSA=$(pyjson "print(d['ek_rsa_sha256'])" <"$W/create.json")
ECC=$(pyjson "print(d['ek_ecc_sha256'])" <"$W/create.json")
cp "$H/state/$U/ek-rsa2048.pem" "$W/rsa.pem"
cp "$H/state/$U/ek-ecc-p256.pem" "$W/ecc.pem"
head -c 32 /dev/urandom >"$W/key"
check "export it" "$CTL" export "$U" --to "$W/u.export" --key-file "$W/key"
check "destroy it" "$CTL" destroy "$U"
check "import it" test "$("$CTL" import "$W/u.export" --key-file "$W/key")" = "$U"
check "show of the imported vTPM has both EK hashes" \
	test "$(field "$U" ek_rsa_sha256) $(field "$U" ek_ecc_sha256)" = "$RSA $ECC"
check "... and both EK certificates, as exported" \
	bash -c "cmp -s '$(field "$U" ek_rsa_cert)' '$W/rsa.pem' && cmp -s '$(field "$U" ek_ecc_cert)' '$W/ecc.pem'"
check "reset of the imported vTPM" "$CTL" reset "$U"
check "attach a guest to it" "$VTPM_SIM" attach --dir "$H" imp --uuid "$U"
TI=$(cat "$H/imp.tcti")
ek_hash() { tpm2_readpublic -T "$TI" -c "$1" -o "$W/ek.pub" >/dev/null 2>&1 && sha256sum "$W/ek.pub" | cut -d' ' -f1; }
check "after the reset the RSA EK is still persistent at 0x81010001" test "$(ek_hash 0x81010001)" = "$RSA"
check "after the reset the ECC EK is still persistent at 0x81010002" test "$(ek_hash 0x81010002)" = "$ECC"
check "detach it" "$VTPM_SIM" detach --dir "$H" imp

finish
