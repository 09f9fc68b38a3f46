# xroad_tree.sh - a realistic X-Road /etc/xroad for tests and benchmarks (source it from bash).
#
#   . tests/lib/xroad_tree.sh
#   xroad_tree DIR [SEED]         # creates the tree (layout of /work/shared/XROAD.md)
#   xroad_resave_keyconf DIR [EPOCH]   # signer's 60 s re-save: same bytes, new mtime (tmp+rename)
#   xroad_edit_keyconf DIR [EPOCH]     # a real change to keyconf.xml (key renamed), tmp+rename
#   xroad_add_key DIR [EPOCH]          # new softtoken/<40 HEX>.p12 (written in place), then
#                                      # keyconf.xml names it (tmp+rename); prints the key id
#   xroad_key_ids DIR                  # prints the key ids named in keyconf.xml
#   XROAD_EXCLUDES                     # array: the guide's --exclude options (IG-XLB §5)
#
# The tree is deterministic for a given SEED (default 1): contents come from AES-CTR streams
# keyed by SEED and the file's role, mtimes are fixed epochs in 2023 (with nanoseconds), so two
# trees built with the same SEED are identical, including every timestamp.  ~75 files, ~65 KB
# after the guide's excludes.  Modes as X-Road leaves them (umask 0027): files 0640, dirs 0750,
# the root 0751, backup.d markers 0440, gpghome 0700 (files 0600), postgresql 0700 with 0400
# files, signer/tmpconf123.tmp 0660.  Owner xroad:xroad when that user exists (created with
# useradd --system when running as root and absent); postgresql/ belongs to postgres if present.
# The mutation functions keep mode and owner of keyconf.xml; EPOCH (seconds[.ns]) defaults to now.

XROAD_EXCLUDES=(--exclude db.properties --exclude /conf.d/node.ini --exclude '*.tmp'
	--exclude /postgresql --exclude /globalconf --exclude /gpghome)

# xr_hash KEY: prints the hex SHA-256 of "SEED:KEY" (SEED from $XR_SEED).
xr_hash() {
	local h
	h=$(printf '%s:%s' "${XR_SEED:-1}" "$1" | sha256sum)
	printf '%s' "${h%% *}"
}

# xr_bytes KEY N: prints N pseudo-random bytes determined by SEED and KEY (AES-128-CTR).
xr_bytes() {
	local h
	h=$(xr_hash "$1")
	head -c "$2" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -K "${h:0:32}" -iv "${h:32:32}" 2>/dev/null
}

# xr_b64 KEY N [WIDTH]: prints N pseudo-random bytes as base64 lines of WIDTH (64; 0 = one line).
xr_b64() {
	xr_bytes "$1" "$2" | base64 -w "${3:-64}"
}

# xr_int KEY MOD: prints a pseudo-random integer in 0..MOD-1.
xr_int() {
	local h
	h=$(xr_hash "$1")
	printf '%d' $((16#${h:0:8} % $2))
}

# xr_keyid KEY: prints a key id: 40 uppercase hex digits.
xr_keyid() {
	local h
	h=$(xr_hash "keyid:$1")
	printf '%s' "${h:0:40}" | tr a-f A-F
}

# xr_pem LABEL KEY N: prints a PEM block of N pseudo-random bytes.
xr_pem() {
	printf -- '-----BEGIN %s-----\n' "$1"
	xr_b64 "$2" "$3"
	printf -- '-----END %s-----\n' "$1"
}

# xr_key_block ID: prints the <key> element of keyconf.xml for key ID (~2.4 KB).
xr_key_block() {
	local id=$1 XR_SEED=keyconf
	cat <<EOF
        <key usage="SIGNING">
            <friendlyName>${id:0:8} sign key</friendlyName>
            <keyId>$id</keyId>
            <publicKey>$(xr_b64 "pub:$id" 294 0)</publicKey>
            <cert active="true">
                <contents>$(xr_b64 "cert:$id" 1010 0)</contents>
                <memberId>
                    <xRoadInstance>EE</xRoadInstance>
                    <memberClass>COM</memberClass>
                    <memberCode>${id:8:8}</memberCode>
                </memberId>
                <ocspResponse>$(xr_b64 "ocsp:$id" 420 0)</ocspResponse>
                <renewalError/>
                <nextAutomaticRenewalTime/>
            </cert>
            <certRequest>
                <id>${id:16:24}</id>
                <memberId>EE/COM/${id:8:8}</memberId>
                <subjectName>C=EE, O=Org ${id:0:4}, CN=${id:8:8}</subjectName>
            </certRequest>
        </key>
EOF
}

# xr_replace_atomic FILE TMPDIR EPOCH: renames TMPDIR/tmpconf*.tmp (prepared in $XR_TMP) over
# FILE keeping FILE's mode and owner, the way the signer saves keyconf.xml; sets its mtime.
xr_replace_atomic() {
	local file=$1 tmp=$2 epoch=$3
	chmod 0660 "$tmp"
	if [ -e "$file" ]; then
		chmod --reference="$file" "$tmp"
		[ "$(id -u)" = 0 ] && chown --reference="$file" "$tmp"
	fi
	touch -d "@$epoch" "$tmp"
	mv -f -- "$tmp" "$file"
}

# xr_now: prints the current time as seconds.nanoseconds.
xr_now() {
	date +%s.%N
}

# xroad_key_ids DIR: prints the key ids named in DIR/signer/keyconf.xml, one per line.
xroad_key_ids() {
	sed -n 's/.*<keyId>\([0-9A-F]*\)<\/keyId>.*/\1/p' "$1/signer/keyconf.xml"
}

# xroad_resave_keyconf DIR [EPOCH]: re-saves keyconf.xml with the same content and a new mtime
# through signer/tmpconf<digits>.tmp and rename.
xroad_resave_keyconf() {
	local dir=$1 epoch=${2:-$(xr_now)} tmp
	tmp=$dir/signer/tmpconf$((RANDOM * 32768 + RANDOM)).tmp
	cat -- "$dir/signer/keyconf.xml" >"$tmp" || return 1
	xr_replace_atomic "$dir/signer/keyconf.xml" "$tmp" "$epoch"
}

# xroad_edit_keyconf DIR [EPOCH]: changes keyconf.xml (the first key's friendly name gets
# " #N", N incremented on each call; size changes too) through tmp+rename.
xroad_edit_keyconf() {
	local dir=$1 epoch=${2:-$(xr_now)} tmp
	tmp=$dir/signer/tmpconf$((RANDOM * 32768 + RANDOM)).tmp
	awk '
	/<key / && !done { inkey = 1 }
	inkey && /<friendlyName>/ && !done {
		if (match($0, / #[0-9]+</)) {
			n = substr($0, RSTART + 2, RLENGTH - 3) + 1
			sub(/ #[0-9]+</, " #" n "<")
		} else {
			sub(/<\/friendlyName>/, " #1</friendlyName>")
		}
		done = 1
	}
	{ print }' "$dir/signer/keyconf.xml" >"$tmp" || return 1
	xr_replace_atomic "$dir/signer/keyconf.xml" "$tmp" "$epoch"
}

# xroad_add_key DIR [EPOCH]: writes a new softtoken .p12 in place (not atomically, as the
# signer does), then a keyconf.xml naming it (tmp+rename); prints the new key id.
xroad_add_key() {
	local dir=$1 epoch=${2:-$(xr_now)} id tmp n p12 XR_SEED
	n=$(xroad_key_ids "$dir" | wc -l)
	XR_SEED=$(sha256sum <"$dir/signer/keyconf.xml")
	XR_SEED=${XR_SEED%% *}
	id=$(xr_keyid "add:$n")
	p12=$dir/signer/softtoken/$id.p12
	xr_bytes "p12:$id" $((2600 + $(xr_int "p12len:$id" 120))) >"$p12" || return 1
	chmod 0640 "$p12"
	[ "$(id -u)" = 0 ] && chown --reference="$dir/signer/softtoken" "$p12"
	touch -d "@$epoch" "$p12"
	tmp=$dir/signer/tmpconf$((RANDOM * 32768 + RANDOM)).tmp
	{
		sed '/^    <\/device>/,$d' "$dir/signer/keyconf.xml"
		xr_key_block "$id"
		sed -n '/^    <\/device>/,$p' "$dir/signer/keyconf.xml"
	} >"$tmp" || return 1
	xr_replace_atomic "$dir/signer/keyconf.xml" "$tmp" "$epoch"
	printf '%s\n' "$id"
}

# xr_ini NAME SECTIONS KEYS: prints an INI file with SECTIONS sections of KEYS keys each.
xr_ini() {
	local name=$1 s k
	printf '; %s - managed by X-Road, local changes go to local.ini\n' "$name"
	for ((s = 0; s < $2; s++)); do
		printf '\n[%s]\n' "$(sed -n "$((s % 6 + 1))p" <<'EOF'
proxy
signer
common
message-log
proxy-ui-api
configuration-client
EOF
)"
		for ((k = 0; k < $3; k++)); do
			printf '%s-%d=%s\n' "$(sed -n "$(((s * 7 + k) % 12 + 1))p" <<'EOF'
client-timeout
server-port
ocsp-cache-path
pool-total-max-connections
health-check-interval
jetty-clientproxy-configuration-file
enforce-token-pin-policy
key-length
archive-interval
client-tls-ciphers
port
database-properties
EOF
)" "$k" "$(xr_int "$name:$s:$k" 90000)"
		done
	done
}

# xr_logback NAME N: prints a logback configuration with N appenders.
xr_logback() {
	local name=$1 i
	printf '<?xml version="1.0" encoding="UTF-8"?>\n<configuration scan="true">\n'
	for ((i = 0; i < $2; i++)); do
		cat <<EOF
    <appender name="$name-$i" class="ch.qos.logback.core.rolling.RollingFileAppender">
        <file>/var/log/xroad/$name-$i.log</file>
        <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
            <fileNamePattern>/var/log/xroad/$name-$i.%i.log.zip</fileNamePattern>
            <minIndex>1</minIndex><maxIndex>$(($(xr_int "$name$i" 9) + 2))</maxIndex>
        </rollingPolicy>
        <encoder><pattern>%d{yyyy-MM-dd HH:mm:ss.SSSXXX} [%thread] %level %logger - %msg%n</pattern></encoder>
    </appender>
EOF
	done
	printf '    <root level="INFO"><appender-ref ref="%s-0"/></root>\n</configuration>\n' "$name"
}

# xr_jetty NAME: prints a jetty XML configuration (~2 KB).
xr_jetty() {
	cat <<EOF
<?xml version="1.0"?>
<!DOCTYPE Configure PUBLIC "-//Jetty//Configure//EN" "http://www.eclipse.org/jetty/configure_9_3.dtd">
<!-- $1: managed by X-Road -->
<Configure id="Server" class="org.eclipse.jetty.server.Server">
    <Get name="ThreadPool">
        <Set name="minThreads" type="int">$(($(xr_int "$1:min" 20) + 4))</Set>
        <Set name="maxThreads" type="int">$(($(xr_int "$1:max" 400) + 100))</Set>
        <Set name="idleTimeout" type="int">60000</Set>
        <Set name="detailedDump">false</Set>
    </Get>
    <Call name="addBean">
        <Arg>
            <New class="org.eclipse.jetty.util.thread.ScheduledExecutorScheduler"/>
        </Arg>
    </Call>
    <New id="httpConfig" class="org.eclipse.jetty.server.HttpConfiguration">
        <Set name="secureScheme">https</Set>
        <Set name="securePort"><Property name="jetty.secure.port" default="$((5500 + $(xr_int "$1:port" 100)))"/></Set>
        <Set name="outputBufferSize">32768</Set>
        <Set name="requestHeaderSize">8192</Set>
        <Set name="responseHeaderSize">8192</Set>
        <Set name="sendServerVersion">false</Set>
        <Set name="sendDateHeader">false</Set>
        <Set name="headerCacheSize">512</Set>
    </New>
    <Call name="addConnector">
        <Arg>
            <New class="org.eclipse.jetty.server.ServerConnector">
                <Arg name="server"><Ref refid="Server"/></Arg>
                <Set name="host"><Property name="jetty.host"/></Set>
                <Set name="port">$((8000 + $(xr_int "$1:http" 1000)))</Set>
                <Set name="idleTimeout">30000</Set>
            </New>
        </Arg>
    </Call>
    <Set name="stopAtShutdown">true</Set>
    <Set name="stopTimeout">5000</Set>
    <Set name="dumpAfterStart">false</Set>
    <Set name="dumpBeforeStop">false</Set>
</Configure>
EOF
}

# xr_services NAME N: prints a services/*.conf environment file with N lines (~40 bytes each).
xr_services() {
	local i
	printf '# %s: settings for the X-Road service start scripts\n' "$1"
	for ((i = 0; i < $2; i++)); do
		printf 'XROAD_%s_PARAMS_%d="-Xms%dm -Dxroad.opt%d=%d"\n' "$(tr a-z- A-Z_ <<<"${1%.*}")" \
			"$i" $((50 + $(xr_int "$1:$i" 200))) "$i" "$(xr_int "$1:v$i" 1000)"
	done
}

# xr_params INSTANCE KIND: prints a globalconf *-params.xml (~1-3 KB).
xr_params() {
	local i
	printf '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
	printf '<tns:conf xmlns:tns="http://x-road.eu/xsd/xroad.xsd">\n'
	printf '    <instanceIdentifier>%s</instanceIdentifier>\n' "$1"
	for ((i = 0; i < $(($(xr_int "$1$2" 4) + 2)); i++)); do
		printf '    <member id="m%d"><memberClass>GOV</memberClass><memberCode>%d</memberCode>' \
			"$i" "$(xr_int "$1$2$i" 99999999)"
		printf '<name>%s member %d</name></member>\n' "$1" "$i"
	done
	printf '    <approvedCA><topCA><cert>%s</cert></topCA></approvedCA>\n' \
		"$(xr_b64 "ca:$1:$2" 600 0)"
	printf '</tns:conf>\n'
}

# xroad_tree DIR [SEED]: creates the tree in DIR (created if absent); see the file header.
xroad_tree() {
	local dir=${1%/} XR_SEED=${2:-1} f i id n base ns owner=""
	local -a keys=()
	[ -n "$dir" ] || return 2
	mkdir -p "$dir" || return 1
	(
		set -e
		umask 0027
		cd "$dir"
		mkdir -p conf.d/addons services signer/softtoken ssl jetty backup.d \
			globalconf/EE globalconf/FI-TEST gpghome/private-keys-v1.d postgresql

		cat >configuration-anchor.xml <<EOF
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<tns:configurationSource xmlns:tns="http://x-road.eu/xsd/xroad.xsd">
    <generatedAt>2023-11-14T$(printf '%02d' "$(xr_int gen 24)"):13:20.000Z</generatedAt>
    <instanceIdentifier>EE</instanceIdentifier>
    <source>
        <downloadURL>http://cs$(xr_int cs 9).example.ee/internalconf</downloadURL>
        <verificationCert>$(xr_b64 anchor1 1100 0)</verificationCert>
    </source>
    <source>
        <downloadURL>http://cs-backup.example.ee/internalconf</downloadURL>
        <verificationCert>$(xr_b64 anchor2 1100 0)</verificationCert>
    </source>
</tns:configurationSource>
EOF
		cat >db.properties <<EOF
serverconf.hibernate.connection.url = jdbc:postgresql://127.0.0.1:5432/serverconf
serverconf.hibernate.connection.username = serverconf
serverconf.hibernate.connection.password = $(xr_b64 dbpw 18 0)
messagelog.hibernate.connection.url = jdbc:postgresql://127.0.0.1:5432/messagelog
messagelog.hibernate.connection.password = $(xr_b64 dbpw2 18 0)
op-monitor.hibernate.connection.password = $(xr_b64 dbpw3 18 0)
EOF
		{
			printf '; devices.ini - PKCS#11 hardware security modules\n'
			printf '; one section per module; library is the PKCS#11 module path\n'
			for ((i = 0; i < 14; i++)); do
				printf '\n[hsm-%d]\nenabled = %s\nlibrary = /usr/lib/hsm%d/libcryptoki.so\n' \
					"$i" "$( ((i % 3)) && echo false || echo true)" "$i"
				printf 'library_cant_create_os_threads = false\nos_locking_ok = true\n'
				printf 'token_id_format = {moduleType}{slotIndex}{serialNumber}\n'
				printf 'sign_verify_pin = %s\n' "$( ((i % 2)) && echo true || echo false)"
				printf 'pin_verification_per_signing = false\nbatch_signing_enabled = true\n'
			done
		} >devices.ini
		printf '%s\n' "$(xr_b64 pin 9 0)" >autologin

		xr_ini common.ini 1 6 >conf.d/common.ini
		xr_ini proxy.ini 2 12 >conf.d/proxy.ini
		xr_ini signer.ini 1 10 >conf.d/signer.ini
		xr_ini proxy-ui-api.ini 2 8 >conf.d/proxy-ui-api.ini
		xr_ini local.ini 3 6 >conf.d/local.ini
		printf '[node]\ntype=master\n' >conf.d/node.ini
		xr_ini override-securityserver-ee.ini 6 8 >conf.d/override-securityserver-ee.ini
		for f in signer proxy confclient proxy-ui-api monitor signer-console; do
			xr_logback "$f" $(($(xr_int "lb$f" 3) + 1)) >"conf.d/$f-logback.xml"
		done
		xr_ini message-log.ini 1 8 >conf.d/addons/message-log.ini
		xr_ini monitor.ini 1 4 >conf.d/addons/monitor.ini

		for f in global.conf proxy.conf signer.conf confclient.conf proxy-ui-api.conf \
			monitor.conf opmonitor.conf jetty.conf; do
			xr_services "$f" $(($(xr_int "svc$f" 30) + 10)) >"services/$f"
		done
		xr_services local.properties 12 | sed 's/^XROAD_/xroad./; s/="/=/; s/"$//' \
			>services/local.properties

		for ((i = 0; i < 3; i++)); do
			keys+=("$(xr_keyid "key$i")")
		done
		{
			printf '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<keyconf>\n'
			printf '    <device>\n        <deviceType>softToken</deviceType>\n'
			printf '        <friendlyName>softToken-0</friendlyName>\n'
			printf '        <id>0</id>\n        <pinIndex>1</pinIndex>\n'
			for id in "${keys[@]}"; do
				xr_key_block "$id"
			done
			printf '    </device>\n</keyconf>\n'
		} >signer/keyconf.xml
		xr_bytes softtoken 2520 >signer/softtoken/.softtoken.p12
		for id in "${keys[@]}"; do
			XR_SEED=keyconf xr_bytes "p12:$id" $((2600 + $(XR_SEED=keyconf \
				xr_int "p12len:$id" 120))) >"signer/softtoken/$id.p12"
		done
		cp signer/keyconf.xml signer/tmpconf123.tmp
		chmod 0660 signer/tmpconf123.tmp

		xr_pem CERTIFICATE internal.crt 880 >ssl/internal.crt
		xr_pem 'PRIVATE KEY' internal.key 1210 >ssl/internal.key
		xr_bytes internal.p12 2400 >ssl/internal.p12
		xr_pem CERTIFICATE ui.crt 900 >ssl/proxy-ui-api.crt
		xr_pem 'PRIVATE KEY' ui.key 1210 >ssl/proxy-ui-api.key
		xr_bytes ui.p12 2450 >ssl/proxy-ui-api.p12
		{
			printf '# openssl.cnf for the X-Road internal TLS certificate\n'
			printf '[ req ]\ndistinguished_name = req_dn\nprompt = no\n'
			printf '[ req_dn ]\nCN = ss%d.example.ee\n' "$(xr_int host 100)"
			printf '[ v3_ext ]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n'
			printf 'subjectAltName = DNS:ss%d.example.ee, IP:10.0.0.%d\n' \
				"$(xr_int host 100)" "$(xr_int ip 250)"
		} >ssl/openssl.cnf

		xr_jetty clientproxy >jetty/clientproxy.xml
		xr_jetty serverproxy >jetty/serverproxy.xml
		xr_jetty ocsp-responder >jetty/ocsp-responder.xml

		for f in xroad-proxy xroad-signer xroad-confclient xroad-proxy-ui-api; do
			: >"backup.d/$f"
		done

		printf 'EE\n' >globalconf/instance-identifier
		for f in EE FI-TEST; do
			for n in shared private; do
				xr_params "$f" "$n" >"globalconf/$f/$n-params.xml"
				printf '{"contentIdentifier":"%s","instanceIdentifier":"%s","contentFileName":"%s","expirationDate":"2023-11-15T00:00:00Z","contentLocation":"http://cs.example.ee/V2/%s","hash":"%s"}\n' \
					"$(tr a-z A-Z <<<"$n")_PARAMETERS" "$f" "$n-params.xml" \
					"$(xr_int "loc$f$n" 99999)" "$(xr_b64 "h$f$n" 32 0)" \
					>"globalconf/$f/$n-params.xml.metadata"
			done
		done
		xr_bytes pubring 1800 >gpghome/pubring.kbx
		xr_bytes trustdb 1280 >gpghome/trustdb.gpg
		xr_bytes gpgkey 1100 >"gpghome/private-keys-v1.d/$(xr_keyid gpg).key"
		printf 'serverconf=%s\n' "$(xr_b64 pg 12 0)" >postgresql/serverconf.password
		printf 'messagelog=%s\n' "$(xr_b64 pg2 12 0)" >postgresql/messagelog.password

		# modes
		find . -type d -exec chmod 0750 {} +
		find . -type f -exec chmod 0640 {} +
		chmod 0751 .
		chmod 0440 backup.d/*
		chmod 0660 signer/tmpconf123.tmp
		chmod -R go-rwx gpghome
		chmod 0700 postgresql
		chmod 0400 postgresql/*
	) || return 1

	# owners
	if [ "$(id -u)" = 0 ]; then
		if ! getent passwd xroad >/dev/null; then
			getent group xroad >/dev/null || groupadd --system xroad || return 1
			useradd --system --gid xroad --home-dir /var/lib/xroad --create-home \
				--shell /bin/bash xroad || return 1
		fi
		owner=xroad:xroad
		chown -R "$owner" "$dir" || return 1
		if getent passwd postgres >/dev/null; then
			chown -R postgres:postgres "$dir/postgresql" || return 1
		fi
	fi

	# fixed mtimes (deepest first does not matter: touch does not change the parent)
	base=$((1699999000 + $(xr_int mtime 600)))
	i=0
	while IFS= read -r -d '' f; do
		ns=$(xr_int "ns$i" 1000000000)
		touch -h -d "@$((base + i * 61)).$(printf '%09d' "$ns")" -- "$dir/$f"
		i=$((i + 1))
	done < <(cd "$dir" && find . -print0 | LC_ALL=C sort -z)
}
