#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Manufacturing at `vtpmd-ctl create`, seen from a simulated guest with real
# tpm2-tools: the EKs are persistent at the TCG handles and match the hashes
# vtpmd reported; the EK (and platform) certificates in the TCG NV indices
# verify with openssl against `vtpmd-ctl ca-cert`, certify exactly the EK's
# key, and are write-locked; the PCR banks are the requested ones; the local
# CA keeps its identity across a daemon restart and its key is not on disk in
# the clear; show prints the EK hashes and certificate files; reset clears the
# owner hierarchy but keeps the EKs, their certificates and the PCR banks;
# destroy removes the certificate files too.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

# vtpm-sim starts $VTPMD with --platform sim:DIR: the wrapper adds the control socket DIR/control.
cat >"$SIMDIR/vtpmd-wrap" <<EOF
#!/bin/sh
dir=
for a in "\$@"; do case "\$a" in sim:*) dir=\${a#sim:} ;; esac; done
exec "$VTPMD" --control "\$dir/control" "\$@"
EOF
chmod +x "$SIMDIR/vtpmd-wrap"
export VTPMD="$SIMDIR/vtpmd-wrap"
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

if ! "$VTPM_SIM" start --dir "$H" --guests 1 >/dev/null; then
	fail "vtpm-sim start"
	finish
fi
export VTPMD_CONTROL=$H/control
ok "simulated host running"

# ---- a fully manufactured vTPM ----
if ! "$CTL" --json create --ek both --ek-cert --platform-cert --pcr-banks sha256,sha384 >"$W/create.json" 2>"$W/create.err"; then
	fail "create --ek both --ek-cert --platform-cert --pcr-banks sha256,sha384: $(cat "$W/create.err")"
	finish
fi
U=$(pyjson "print(d['uuid'])" <"$W/create.json")
RSA_HASH=$(pyjson "print(d['ek_rsa_sha256'])" <"$W/create.json")
ECC_HASH=$(pyjson "print(d['ek_ecc_sha256'])" <"$W/create.json")
ok "create with EKs, certificates and PCR banks: $U"
check "create reports both EK hashes" bash -c "[[ '$RSA_HASH' =~ ^[0-9a-f]{64}$ && '$ECC_HASH' =~ ^[0-9a-f]{64}$ ]]"

check "ca-cert prints the CA certificate" bash -c "'$CTL' ca-cert >'$W/ca.pem' && openssl x509 -in '$W/ca.pem' -noout"
check "the CA certificate is a self-signed CA" \
	bash -c "openssl verify -CAfile '$W/ca.pem' '$W/ca.pem' >/dev/null && openssl x509 -in '$W/ca.pem' -noout -ext basicConstraints | grep -q 'CA:TRUE'"
check "the CA key is not stored in the clear" \
	bash -c "[ -s '$H/state/ca-key' ] && ! grep -q 'PRIVATE KEY' '$H/state/ca-key' && ! openssl pkey -inform der -in '$H/state/ca-key' -noout 2>/dev/null"
check "the EK certificate files are next to the state" \
	bash -c "openssl verify -CAfile '$W/ca.pem' '$H/state/$U/ek-rsa2048.pem' '$H/state/$U/ek-ecc-p256.pem' >/dev/null"

check "attach a guest to the manufactured vTPM" "$VTPM_SIM" attach --dir "$H" m1 --uuid "$U"
T=$(tcti m1 2>/dev/null || cat "$H/m1.tcti")

ek_hash() { tpm2_readpublic -T "$T" -c "$1" -o "$W/ek.pub" >/dev/null && sha256sum "$W/ek.pub" | cut -d' ' -f1; }
check "the RSA EK is persistent at 0x81010001 and matches the reported hash" [ "$(ek_hash 0x81010001)" = "$RSA_HASH" ]
check "the ECC EK is persistent at 0x81010002 and matches the reported hash" [ "$(ek_hash 0x81010002)" = "$ECC_HASH" ]
check "the RSA EK is the TCG default EK (tpm2_createek makes the same key)" \
	bash -c "tpm2_createek -T '$T' -G rsa -c '$W/ek.ctx' -u '$W/ek2.pub' >/dev/null && tpm2_flushcontext -T '$T' -t && [ \"\$(sha256sum <'$W/ek2.pub' | cut -d' ' -f1)\" = '$RSA_HASH' ]"

# nvcert INDEX NAME: reads the certificate in NV as the guest would.
nvcert() {
	tpm2_nvread -T "$T" "$1" -C o -o "$W/$2.der" 2>/dev/null &&
		openssl x509 -inform der -in "$W/$2.der" -out "$W/$2.pem"
}
check "the guest reads the RSA EK certificate at 0x01c00002" nvcert 0x01c00002 rsa
check "the guest reads the ECC EK certificate at 0x01c0000a" nvcert 0x01c0000a ecc
check "the guest reads the platform certificate at 0x01c08000" nvcert 0x01c08000 platform
check "openssl verify accepts the EK certificates against the CA" \
	bash -c "openssl verify -CAfile '$W/ca.pem' '$W/rsa.pem' '$W/ecc.pem' '$W/platform.pem' >/dev/null"
check "the NV certificate is the one in the state directory" cmp -s "$W/rsa.pem" "$H/state/$U/ek-rsa2048.pem"

certifies() {
	tpm2_readpublic -T "$T" -c "$1" -f pem -o "$W/key.pem" >/dev/null &&
		openssl x509 -in "$W/$2.pem" -pubkey -noout | cmp -s - "$W/key.pem"
}
check "the RSA certificate certifies the RSA EK" certifies 0x81010001 rsa
check "the ECC certificate certifies the ECC EK" certifies 0x81010002 ecc
profile() {
	local t
	t=$(openssl x509 -in "$W/$1.pem" -noout -text) &&
		grep -q 'Subject Alternative Name: critical' <<<"$t" &&
		grep -q '2.23.133.2.1=id:49424D00' <<<"$t" &&
		grep -q '2.23.133.8.1' <<<"$t" &&
		grep -q 'CA:FALSE' <<<"$t" &&
		grep -q "$2" <<<"$t" &&
		[ -z "$(openssl x509 -in "$W/$1.pem" -noout -subject | sed 's/^subject=//; s/ //g')" ]
}
check "the RSA certificate follows the TCG profile (empty subject, critical SAN, EKU, keyEncipherment)" \
	profile rsa 'Key Encipherment'
check "the ECC certificate follows the TCG profile (keyAgreement)" profile ecc 'Key Agreement'

echo junk >"$W/junk"
check "the EK certificate index is write-locked" \
	bash -c "tpm2_nvreadpublic -T '$T' 0x01c00002 | grep -q writelocked && ! tpm2_nvwrite -T '$T' 0x01c00002 -C p -i '$W/junk' 2>/dev/null"
check "the certificate index cannot be undefined by the owner" \
	bash -c "! tpm2_nvundefine -T '$T' 0x01c00002 -C o 2>/dev/null"

# The banks with PCRs allocated, from "  - sha256: [ 0, 1, ... ]" lines.
banks() { tpm2_getcap -T "$T" pcrs | sed -n 's/^ *- \(sha[0-9]*\): \[ [0-9].*/\1/p' | tr '\n' ' '; }
check "PCR banks are sha256 and sha384 only (got: $(banks))" [ "$(banks)" = "sha256 sha384 " ]

# ---- persistence: a guest reboot and a daemon restart ----
check "guest reboot" "$VTPM_SIM" reboot --dir "$H" m1
T=$(cat "$H/m1.tcti")
check "after a reboot the EK and its locked certificate are still there" \
	bash -c "[ \"\$(tpm2_readpublic -T '$T' -c 0x81010001 -o '$W/r.pub' >/dev/null && sha256sum <'$W/r.pub' | cut -d' ' -f1)\" = '$RSA_HASH' ] && tpm2_nvread -T '$T' 0x01c00002 -C o 2>/dev/null | cmp -s - '$W/rsa.der'"
check "daemon restart" "$VTPM_SIM" restart-daemon --dir "$H"
check "the CA is the same after a daemon restart" bash -c "'$CTL' ca-cert | cmp -s - '$W/ca.pem'"

# ---- show: the EK hashes and certificate files ----
check "show (human) prints the EK hashes create printed" \
	bash -c "'$CTL' show '$U' >'$W/show.txt' && grep -qx 'EK RSA SHA-256 *$RSA_HASH' '$W/show.txt' && grep -qx 'EK ECC SHA-256 *$ECC_HASH' '$W/show.txt'"
check "show (human) prints the EK certificate paths" \
	bash -c "grep -qx 'EK RSA cert *$H/state/$U/ek-rsa2048.pem' '$W/show.txt' && grep -qx 'EK ECC cert *$H/state/$U/ek-ecc-p256.pem' '$W/show.txt'"
check "show --json has the EK hashes and certificate paths" bash -c "'$CTL' --json show '$U' | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['ek_rsa_sha256']=='$RSA_HASH' and d['ek_ecc_sha256']=='$ECC_HASH' and \
d['ek_rsa_cert']=='$H/state/$U/ek-rsa2048.pem' and d['ek_ecc_cert']=='$H/state/$U/ek-ecc-p256.pem'\""

# ---- reset: a TPM clear that keeps the identity ----
T=$(cat "$H/m1.tcti")
printf 'owner-secret' >"$W/nv.in"
check "the guest takes ownership: owner and endorsement passwords, an NV index, a persistent key" bash -c "\
tpm2_nvdefine -T '$T' -C o -s 16 -a 'ownerread|ownerwrite' 0x01500020 >/dev/null && \
tpm2_nvwrite -T '$T' -C o -i '$W/nv.in' 0x01500020 && \
tpm2_createprimary -T '$T' -C o -c '$W/srk.ctx' >/dev/null && tpm2_evictcontrol -T '$T' -C o -c '$W/srk.ctx' 0x81000001 >/dev/null && \
tpm2_changeauth -T '$T' -c o owner-pass && tpm2_changeauth -T '$T' -c e endorsement-pass"
check "detach m1 for the reset" "$VTPM_SIM" detach --dir "$H" m1
if "$CTL" --json reset "$U" >"$W/reset.json" 2>"$W/reset.err"; then
	ok "reset of the manufactured vTPM"
	check "reset reports the same EK hashes" \
		bash -c "python3 -c \"import json,sys; d=json.load(sys.stdin); assert d['ek_rsa_sha256']=='$RSA_HASH' and d['ek_ecc_sha256']=='$ECC_HASH'\" <'$W/reset.json'"
else
	fail "reset of the manufactured vTPM: $(cat "$W/reset.err")"
fi
check "reattach m1 after the reset" "$VTPM_SIM" attach --dir "$H" m1 --uuid "$U"
T=$(cat "$H/m1.tcti")
check "after reset the owner's NV index is gone" bash -c "! tpm2_nvreadpublic -T '$T' 0x01500020 >/dev/null 2>&1"
check "after reset the owner's persistent key is gone" bash -c "! tpm2_readpublic -T '$T' -c 0x81000001 >/dev/null 2>&1"
check "after reset the owner and endorsement passwords are empty again" \
	bash -c "tpm2_nvdefine -T '$T' -C o -s 8 -a 'ownerread|ownerwrite' 0x01500021 >/dev/null && tpm2_nvundefine -T '$T' -C o 0x01500021 && \
tpm2_createprimary -T '$T' -C e -c '$W/e.ctx' >/dev/null && tpm2_flushcontext -T '$T' -t"
check "after reset the RSA EK is unchanged at 0x81010001" [ "$(ek_hash 0x81010001)" = "$RSA_HASH" ]
check "after reset the ECC EK is unchanged at 0x81010002" [ "$(ek_hash 0x81010002)" = "$ECC_HASH" ]
check "after reset the EK certificate at 0x01c00002 still reads back" \
	bash -c "tpm2_nvread -T '$T' 0x01c00002 -C o 2>/dev/null | cmp -s - '$W/rsa.der'"
check "after reset the platform certificate at 0x01c08000 still reads back" \
	bash -c "tpm2_nvread -T '$T' 0x01c08000 -C o 2>/dev/null | cmp -s - '$W/platform.der'"
check "after reset the PCR banks are still sha256 and sha384 (got: $(banks))" [ "$(banks)" = "sha256 sha384 " ]
check "after reset show prints the same EK hash" bash -c "'$CTL' show '$U' | grep -qx 'EK RSA SHA-256 *$RSA_HASH'"

# A recorded EK the endorsement seed no longer makes: refused before anything is cleared.
check "the guest writes an NV index again" bash -c "tpm2_nvdefine -T '$T' -C o -s 16 -a 'ownerread|ownerwrite' 0x01500020 >/dev/null"
check "detach m1" "$VTPM_SIM" detach --dir "$H" m1
cp "$H/state/$U/ek-sha256" "$W/ek-sha256"
sed -i "s/$RSA_HASH/$(printf '%064d' 0)/" "$H/state/$U/ek-sha256"
"$CTL" reset "$U" >/dev/null 2>"$W/reset2.err"
check "reset with a wrong recorded EK fails in one line" \
	bash -c "[ $? -ne 0 ] && [ \$(wc -l <'$W/reset2.err') -eq 1 ] && grep -q 'resetting vTPM $U failed' '$W/reset2.err'"
cp "$W/ek-sha256" "$H/state/$U/ek-sha256"
check "reattach m1" "$VTPM_SIM" attach --dir "$H" m1 --uuid "$U"
T=$(cat "$H/m1.tcti")
check "... and nothing was cleared (the NV index is still there)" tpm2_nvreadpublic -T "$T" 0x01500020

# ---- defaults: only what is asked for ----
if U2=$("$CTL" create --ek rsa2048 2>"$W/create2.err"); then
	ok "create --ek rsa2048"
	check "attach a guest to it" "$VTPM_SIM" attach --dir "$H" m2 --uuid "$U2"
	T2=$(cat "$H/m2.tcti")
	check "it has the RSA EK" bash -c "tpm2_readpublic -T '$T2' -c 0x81010001 >/dev/null"
	check "and no ECC EK, no certificate" \
		bash -c "! tpm2_readpublic -T '$T2' -c 0x81010002 >/dev/null 2>&1 && ! tpm2_getcap -T '$T2' handles-nv-index | grep -qi 0x1c00002 && [ ! -e '$H/state/$U2/ek-rsa2048.pem' ]"
	check "and libtpms' default PCR banks" bash -c "tpm2_getcap -T '$T2' pcrs | grep -q 'sha1: \[ 0'"
	check "show of a vTPM with an EK but no certificate" bash -c "'$CTL' --json show '$U2' | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert len(d['ek_rsa_sha256'])==64 and d['ek_ecc_sha256'] is None and d['ek_rsa_cert'] is None\""
else
	fail "create --ek rsa2048: $(cat "$W/create2.err")"
fi
check "the CA is not re-created by a second vTPM" bash -c "'$CTL' ca-cert | cmp -s - '$W/ca.pem'"

# ---- ECC EK only: the platform certificate is issued over it ----
if U3=$("$CTL" create --ek ecc-p256 --platform-cert 2>"$W/create3.err"); then
	ok "create --ek ecc-p256 --platform-cert"
	check "attach a guest to it" "$VTPM_SIM" attach --dir "$H" m3 --uuid "$U3"
	T=$(cat "$H/m3.tcti")
	check "the guest reads its platform certificate at 0x01c08000" nvcert 0x01c08000 platform3
	check "openssl verify accepts it against the CA" \
		bash -c "openssl verify -CAfile '$W/ca.pem' '$W/platform3.pem' >/dev/null"
	check "the platform certificate certifies the ECC EK" certifies 0x81010002 platform3
	check "and no EK certificate, no RSA EK" \
		bash -c "! tpm2_getcap -T '$T' handles-nv-index | grep -qi 0x1c0000a && ! tpm2_readpublic -T '$T' -c 0x81010001 >/dev/null 2>&1"
	check "detach m3" "$VTPM_SIM" detach --dir "$H" m3
else
	fail "create --ek ecc-p256 --platform-cert: $(cat "$W/create3.err")"
fi

# ---- destroy removes the public files with the rest ----
check "detach m1" "$VTPM_SIM" detach --dir "$H" m1
check "destroy the manufactured vTPM (right after the detach)" "$CTL" destroy "$U"
check "its directory and certificate files are gone" [ ! -e "$H/state/$U" ]

finish
