#!/bin/sh
# Unit tests: what isthmus.so asks of the process that loads it, and what it
# offers.  slurmstepd, slurmd, srun and sbatch dlopen the plugin: it must
# not pull in libcurl, libslurm or libcrypto (a second libslurm in
# slurmstepd, or a missing symbol found only at dlopen), and it must export
# only the symbols Slurm's loader looks up, so none of the internal
# libraries' ism_* functions can shadow or be shadowed by the host's.
# Prints TAP.  Needs ISTHMUS_SPANK_SO (the built plugin).
so=${ISTHMUS_SPANK_SO:?}
. "$(dirname "$0")/../tap.sh"

[ -r "$so" ] || bail "no plugin at $so"
command -v nm >/dev/null && command -v readelf >/dev/null || bail "nm and readelf (binutils) are needed"

# The exported symbols, the dependencies and the undefined symbols.
defined=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | sort -u)
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
undefined=$(nm -D --undefined-only "$so" | awk '{print $2}' | sed 's/@.*//' | sort -u)

allowed='^(slurm_spank_[a-z_]+|plugin_(name|type|version)|spank_plugin_version)$'
extra=$(printf '%s\n' "$defined" | grep -Ev "$allowed" | grep -v '^$')
check "exports nothing but the SPANK entry points" "$extra" ""
ok_if "exports slurm_spank_init" sh -c "printf '%s\n' \"$defined\" | grep -qx slurm_spank_init"
ok_if "exports plugin_version for Slurm's loader" sh -c "printf '%s\n' \"$defined\" | grep -qx plugin_version"

bad_libs=$(printf '%s\n' "$needed" | grep -E '^lib(curl|slurm|slurmfull|crypto|ssl|yaml|microhttpd)[-.]' || true)
check "links no libcurl, libslurm, libcrypto, libyaml or libmicrohttpd" "$bad_libs" ""

# Slurm's own symbols come from the host: only the SPANK API and its logging.
host='^(spank_[a-z_]+|slurm_(info|error|verbose|debug[23]?|spank_log))$'
from_slurm=$(printf '%s\n' "$undefined" | grep -E '^(slurm_|spank_)' | grep -Ev "$host" || true)
check "asks the host for no Slurm symbol beyond the SPANK API" "$from_slurm" ""
foreign=$(printf '%s\n' "$undefined" | grep -E '^(curl_|yaml_|EVP_|CRYPTO_|OPENSSL_|SSL_|MHD_|ism_)' || true)
check "needs no symbol of libcurl, libyaml, libcrypto, libmicrohttpd or of ours" "$foreign" ""

tap_plan
[ "$failed" -eq 0 ]
