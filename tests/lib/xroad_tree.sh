# xroad_tree.sh - a realistic X-Road /etc/xroad for tests and benchmarks (source it from bash).
#
#   . tests/lib/xroad_tree.sh
#   xroad_tree DIR [SEED]              # creates the tree (layout of /work/shared/XROAD.md)
#   xroad_resave_keyconf DIR [EPOCH]   # signer's 60 s re-save: same bytes, new mtime (tmp+rename)
#   xroad_edit_keyconf DIR [EPOCH]     # a real change to keyconf.xml (a key renamed), tmp+rename
#   xroad_add_key DIR [EPOCH]          # new softtoken/<40 HEX>.p12 (written in place), then a
#                                      # keyconf.xml naming it (tmp+rename); prints the key id
#   xroad_key_ids DIR                  # prints the key ids named in keyconf.xml
#   XROAD_EXCLUDES                     # array: the guide's --exclude options (IG-XLB §5)
#   XROAD_RSYNC_OPTS                   # array: the guide's options without -e and --log-file
#
# Deterministic for a given SEED (default 1): text comes from a Park-Miller PRNG in awk seeded
# by SEED and the file's name, binary files (.p12, gpg) from an AES-128-CTR stream keyed by
# SEED; mtimes are fixed epochs in November 2023 with nanoseconds (one per directory; key files
# and keyconf.xml later).  Two trees built with the same SEED are identical, timestamps
# included.  ~62 files; ~54 entries and ~69 KB after the guide's excludes (the guide's sample
# reports 65,346 bytes).  Modes as X-Road leaves them (umask 0027): files 0640, dirs 0750, the
# root 0751, backup.d markers 0440, gpghome 0700 (files 0600), postgresql 0700 with 0400 files,
# signer/tmpconf123.tmp 0660.  Owner xroad:xroad when running as root (user and group created
# with useradd --system when absent); postgresql/ belongs to postgres if that user exists.
# The mutation functions keep mode and owner of keyconf.xml; EPOCH (seconds[.ns]) defaults to
# now.  Few processes are spawned (process creation is slow on some test VMs): ~40 per tree.

XROAD_EXCLUDES=(--exclude db.properties --exclude /conf.d/node.ini --exclude '*.tmp'
	--exclude /postgresql --exclude /globalconf --exclude /gpghome)
XROAD_RSYNC_OPTS=(-aqz --timeout=10 --delete-delay "${XROAD_EXCLUDES[@]}" --delay-updates)

# The generator.  Variables: mode (tree|keyblock|addkey|edit), seed, dir (tree root),
# id (keyblock).  Mode tree writes every text file below dir and prints "SIZE PATH" lines for
# the binary files that the caller fills; addkey/edit read keyconf.xml on stdin and write the
# new one on stdout (addkey prints the id on stderr).
XR_AWK='
function rnd() { st = (st * 16807) % 2147483647; return st }
function ri(n) { return rnd() % n }
function sd(s,  i, h) {
	h = 7
	for (i = 1; i <= length(s); i++)
		h = (h * 31 + index(CH, substr(s, i, 1)) + 1) % 2147483647
	st = h ? h : 1
	rnd(); rnd()
}
function b64(n,  s, i) { s = ""; for (i = 0; i < n; i++) s = s substr(B64, ri(64) + 1, 1); return s }
function hex(n,  s, i) { s = ""; for (i = 0; i < n; i++) s = s substr(HEX, ri(16) + 1, 1); return s }
function pem(label, n,  i, s) {
	s = "-----BEGIN " label "-----\n"
	for (i = 0; i < n; i += 64) s = s b64(n - i < 64 ? n - i : 64) "\n"
	return s "-----END " label "-----"
}
function open_(p) { sd(seed ":" p); cur = dir "/" p }
function close_() { close(cur) }
function keyid(k) { sd(seed ":keyid:" k); return hex(40) }
function keyblock(id,  s) {
	sd("key:" id)
	s = "        <key usage=\"SIGNING\">\n"
	s = s "            <friendlyName>" substr(id, 1, 8) " sign key</friendlyName>\n"
	s = s "            <keyId>" id "</keyId>\n"
	s = s "            <publicKey>" b64(360) "</publicKey>\n"
	s = s "            <cert active=\"true\">\n"
	s = s "                <contents>" b64(1000) "</contents>\n"
	s = s "                <memberId>\n"
	s = s "                    <xRoadInstance>EE</xRoadInstance>\n"
	s = s "                    <memberClass>COM</memberClass>\n"
	s = s "                    <memberCode>" substr(id, 9, 8) "</memberCode>\n"
	s = s "                </memberId>\n"
	s = s "                <ocspResponse>" b64(560) "</ocspResponse>\n"
	s = s "                <renewalError/>\n"
	s = s "                <nextAutomaticRenewalTime/>\n"
	s = s "            </cert>\n"
	s = s "            <certRequest>\n"
	s = s "                <id>" substr(id, 17, 24) "</id>\n"
	s = s "                <memberId>EE/COM/" substr(id, 9, 8) "</memberId>\n"
	s = s "                <subjectName>C=EE, O=Org " substr(id, 1, 4) ", CN=" substr(id, 9, 8) "</subjectName>\n"
	s = s "            </certRequest>\n"
	return s "        </key>"
}
function ini(p, nsec, nkey,  s, k) {
	open_(p)
	print "; " p " - managed by X-Road, local changes go to local.ini" > cur
	for (s = 0; s < nsec; s++) {
		print "\n[" SEC[s % 6] "]" > cur
		for (k = 0; k < nkey; k++)
			print KEY[(s * 7 + k) % 12] "-" k "=" ri(90000) > cur
	}
	close_()
}
function logback(name, n,  i) {
	open_("conf.d/" name "-logback.xml")
	print "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<configuration scan=\"true\">" > cur
	for (i = 0; i < n; i++) {
		print "    <appender name=\"" name "-" i "\" class=\"ch.qos.logback.core.rolling.RollingFileAppender\">" > cur
		print "        <file>/var/log/xroad/" name "-" i ".log</file>" > cur
		print "        <rollingPolicy class=\"ch.qos.logback.core.rolling.FixedWindowRollingPolicy\">" > cur
		print "            <fileNamePattern>/var/log/xroad/" name "-" i ".%i.log.zip</fileNamePattern>" > cur
		print "            <minIndex>1</minIndex><maxIndex>" ri(9) + 2 "</maxIndex>" > cur
		print "        </rollingPolicy>" > cur
		print "        <encoder><pattern>%d{yyyy-MM-dd HH:mm:ss.SSSXXX} [%thread] %level %logger - %msg%n</pattern></encoder>" > cur
		print "    </appender>" > cur
	}
	print "    <root level=\"INFO\"><appender-ref ref=\"" name "-0\"/></root>\n</configuration>" > cur
	close_()
}
function jetty(name) {
	open_("jetty/" name ".xml")
	print "<?xml version=\"1.0\"?>" > cur
	print "<!DOCTYPE Configure PUBLIC \"-//Jetty//Configure//EN\" \"http://www.eclipse.org/jetty/configure_9_3.dtd\">" > cur
	print "<!-- " name ": managed by X-Road -->" > cur
	print "<Configure id=\"Server\" class=\"org.eclipse.jetty.server.Server\">" > cur
	print "    <Get name=\"ThreadPool\">" > cur
	print "        <Set name=\"minThreads\" type=\"int\">" ri(20) + 4 "</Set>" > cur
	print "        <Set name=\"maxThreads\" type=\"int\">" ri(400) + 100 "</Set>" > cur
	print "        <Set name=\"idleTimeout\" type=\"int\">60000</Set>" > cur
	print "        <Set name=\"detailedDump\">false</Set>" > cur
	print "    </Get>" > cur
	print "    <Call name=\"addBean\">\n        <Arg>" > cur
	print "            <New class=\"org.eclipse.jetty.util.thread.ScheduledExecutorScheduler\"/>" > cur
	print "        </Arg>\n    </Call>" > cur
	print "    <New id=\"httpConfig\" class=\"org.eclipse.jetty.server.HttpConfiguration\">" > cur
	print "        <Set name=\"secureScheme\">https</Set>" > cur
	print "        <Set name=\"securePort\"><Property name=\"jetty.secure.port\" default=\"" 5500 + ri(100) "\"/></Set>" > cur
	print "        <Set name=\"outputBufferSize\">32768</Set>" > cur
	print "        <Set name=\"requestHeaderSize\">8192</Set>" > cur
	print "        <Set name=\"responseHeaderSize\">8192</Set>" > cur
	print "        <Set name=\"sendServerVersion\">false</Set>" > cur
	print "        <Set name=\"sendDateHeader\">false</Set>" > cur
	print "        <Set name=\"headerCacheSize\">512</Set>" > cur
	print "    </New>" > cur
	print "    <Call name=\"addConnector\">\n        <Arg>" > cur
	print "            <New class=\"org.eclipse.jetty.server.ServerConnector\">" > cur
	print "                <Arg name=\"server\"><Ref refid=\"Server\"/></Arg>" > cur
	print "                <Set name=\"host\"><Property name=\"jetty.host\"/></Set>" > cur
	print "                <Set name=\"port\">" 8000 + ri(1000) "</Set>" > cur
	print "                <Set name=\"idleTimeout\">30000</Set>" > cur
	print "            </New>\n        </Arg>\n    </Call>" > cur
	print "    <Set name=\"stopAtShutdown\">true</Set>\n    <Set name=\"stopTimeout\">5000</Set>" > cur
	print "    <Set name=\"dumpAfterStart\">false</Set>\n    <Set name=\"dumpBeforeStop\">false</Set>" > cur
	print "</Configure>" > cur
	close_()
}
function services(name, n,  i, up) {
	open_("services/" name)
	up = toupper(name); sub(/\..*/, "", up); gsub(/-/, "_", up)
	print "# " name ": settings for the X-Road service start scripts" > cur
	for (i = 0; i < n; i++)
		print "XROAD_" up "_PARAMS_" i "=\"-Xms" 50 + ri(200) "m -Dxroad.opt" i "=" ri(1000) "\"" > cur
	close_()
}
function params(inst, kind,  i, n) {
	open_("globalconf/" inst "/" kind "-params.xml")
	print "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>" > cur
	print "<tns:conf xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\">" > cur
	print "    <instanceIdentifier>" inst "</instanceIdentifier>" > cur
	n = ri(4) + 2
	for (i = 0; i < n; i++) {
		printf "    <member id=\"m%d\"><memberClass>GOV</memberClass>", i > cur
		print "<memberCode>" ri(99999999) "</memberCode><name>" inst " member " i "</name></member>" > cur
	}
	print "    <approvedCA><topCA><cert>" b64(800) "</cert></topCA></approvedCA>\n</tns:conf>" > cur
	close_()
	open_("globalconf/" inst "/" kind "-params.xml.metadata")
	printf "{\"contentIdentifier\":\"%s_PARAMETERS\",\"instanceIdentifier\":\"%s\",", toupper(kind),
		inst > cur
	printf "\"contentFileName\":\"%s-params.xml\",\"expirationDate\":\"2023-11-15T00:00:00Z\",",
		kind > cur
	printf "\"contentLocation\":\"http://cs.example.ee/V2/%d\",", ri(99999) > cur
	print "\"hash\":\"" b64(43) "=\"}" > cur
	close_()
}
function text(p, s) { open_(p); print s > cur; close_() }
function bin(p, n) { print n, p }
function tree(  i, f, s, nk) {
	open_("configuration-anchor.xml")
	print "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>" > cur
	print "<tns:configurationSource xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\">" > cur
	printf "    <generatedAt>2023-11-14T%02d:13:20.000Z</generatedAt>\n", ri(24) > cur
	print "    <instanceIdentifier>EE</instanceIdentifier>" > cur
	print "    <source>\n        <downloadURL>http://cs" ri(9) ".example.ee/internalconf</downloadURL>" > cur
	print "        <verificationCert>" b64(1468) "</verificationCert>\n    </source>" > cur
	print "    <source>\n        <downloadURL>http://cs-backup.example.ee/internalconf</downloadURL>" > cur
	print "        <verificationCert>" b64(1468) "</verificationCert>\n    </source>" > cur
	print "</tns:configurationSource>" > cur
	close_()
	open_("db.properties")
	print "serverconf.hibernate.connection.url = jdbc:postgresql://127.0.0.1:5432/serverconf" > cur
	print "serverconf.hibernate.connection.username = serverconf" > cur
	print "serverconf.hibernate.connection.password = " b64(24) > cur
	print "messagelog.hibernate.connection.url = jdbc:postgresql://127.0.0.1:5432/messagelog" > cur
	print "messagelog.hibernate.connection.password = " b64(24) > cur
	print "op-monitor.hibernate.connection.password = " b64(24) > cur
	close_()
	open_("devices.ini")
	print "; devices.ini - PKCS#11 hardware security modules\n; one section per module" > cur
	for (i = 0; i < 14; i++) {
		print "\n[hsm-" i "]\nenabled = " (i % 3 ? "false" : "true") > cur
		print "library = /usr/lib/hsm" i "/libcryptoki.so\nlibrary_cant_create_os_threads = false" > cur
		print "os_locking_ok = true\ntoken_id_format = {moduleType}{slotIndex}{serialNumber}" > cur
		print "sign_verify_pin = " (ri(2) ? "true" : "false") "\npin_verification_per_signing = false" > cur
		print "batch_signing_enabled = true" > cur
	}
	close_()
	text("autologin", b64(12))
	ini("conf.d/common.ini", 1, 6)
	ini("conf.d/proxy.ini", 2, 12)
	ini("conf.d/signer.ini", 1, 10)
	ini("conf.d/proxy-ui-api.ini", 2, 8)
	ini("conf.d/local.ini", 3, 6)
	text("conf.d/node.ini", "[node]\ntype=master")
	ini("conf.d/override-securityserver-ee.ini", 6, 8)
	split("signer proxy confclient proxy-ui-api monitor signer-console", f, " ")
	for (i = 1; i <= 6; i++) { sd(seed f[i]); logback(f[i], ri(3) + 1) }
	ini("conf.d/addons/message-log.ini", 1, 8)
	ini("conf.d/addons/monitor.ini", 1, 4)
	split("global.conf proxy.conf signer.conf confclient.conf proxy-ui-api.conf monitor.conf " \
		"opmonitor.conf jetty.conf", f, " ")
	for (i = 1; i <= 8; i++) { sd(seed "n" f[i]); services(f[i], ri(30) + 10) }
	open_("services/local.properties")
	for (i = 0; i < 14; i++) print "xroad.local.opt" i "=" ri(100000) > cur
	close_()
	s = ""
	for (i = 0; i < 3; i++) { KID[i] = keyid(i); s = s "\n" keyblock(KID[i]) }
	s = "        <id>0</id>\n        <pinIndex>1</pinIndex>" s "\n    </device>\n</keyconf>"
	s = "        <friendlyName>softToken-0</friendlyName>\n" s
	s = "<keyconf>\n    <device>\n        <deviceType>softToken</deviceType>\n" s
	s = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n" s
	text("signer/keyconf.xml", s)
	text("signer/tmpconf123.tmp", s)
	bin("signer/softtoken/.softtoken.p12", 2520)
	for (i = 0; i < 3; i++) { sd("p12:" KID[i]); bin("signer/softtoken/" KID[i] ".p12", 2600 + ri(120)) }
	text("ssl/internal.crt", pem("CERTIFICATE", 1176))
	text("ssl/internal.key", pem("PRIVATE KEY", 1620))
	bin("ssl/internal.p12", 2400)
	text("ssl/proxy-ui-api.crt", pem("CERTIFICATE", 1200))
	text("ssl/proxy-ui-api.key", pem("PRIVATE KEY", 1620))
	bin("ssl/proxy-ui-api.p12", 2450)
	sd(seed "host"); i = ri(100)
	s = "# openssl.cnf for the X-Road internal TLS certificate\n[ req ]\n"
	s = s "distinguished_name = req_dn\nprompt = no\n[ req_dn ]\nCN = ss" i ".example.ee\n"
	s = s "[ v3_ext ]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n"
	text("ssl/openssl.cnf", s "subjectAltName = DNS:ss" i ".example.ee, IP:10.0.0." ri(250))
	jetty("clientproxy"); jetty("serverproxy"); jetty("ocsp-responder")
	text("globalconf/instance-identifier", "EE")
	params("EE", "shared"); params("EE", "private"); params("FI-TEST", "shared"); params("FI-TEST", "private")
	bin("gpghome/pubring.kbx", 1800)
	bin("gpghome/trustdb.gpg", 1280)
	bin("gpghome/private-keys-v1.d/" keyid("gpg") ".key", 1100)
	sd(seed "pg")
	text("postgresql/serverconf.password", "serverconf=" b64(16))
	text("postgresql/messagelog.password", "messagelog=" b64(16))
}
BEGIN {
	CH = " !\"#$%&\047()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	HEX = "0123456789ABCDEF"
	split("proxy signer common message-log proxy-ui-api configuration-client", a, " ")
	for (i = 0; i < 6; i++) SEC[i] = a[i + 1]
	split("client-timeout server-port ocsp-cache-path pool-total-max-connections " \
		"health-check-interval jetty-clientproxy-configuration-file enforce-token-pin-policy " \
		"key-length archive-interval client-tls-ciphers port database-properties", a, " ")
	for (i = 0; i < 12; i++) KEY[i] = a[i + 1]
	if (mode == "tree") { tree(); exit }
	if (mode == "keyblock") { print keyblock(id); exit }
}
mode == "addkey" || mode == "edit" { line[n++] = $0; all = all $0 "\n" }
END {
	if (mode == "addkey") {
		sd(all); id = hex(40)
		for (i = 0; i < n; i++) {
			if (line[i] == "    </device>") print keyblock(id)
			print line[i]
		}
		sd("p12:" id)
		print id, hex(32), hex(32), 2600 + ri(120) > "/dev/stderr"
	} else if (mode == "edit") {
		for (i = 0; i < n; i++) {
			if (!done && inkey && line[i] ~ /<friendlyName>/) {
				if (match(line[i], / #[0-9]+</)) {
					k = substr(line[i], RSTART + 2, RLENGTH - 3) + 1
					sub(/ #[0-9]+</, " #" k "<", line[i])
				} else {
					sub(/<\/friendlyName>/, " #1</friendlyName>", line[i])
				}
				done = 1
			}
			if (line[i] ~ /<key /) inkey = 1
			print line[i]
		}
	}
}'

# xr_stream HEXSEED: prints an endless pseudo-random byte stream keyed by HEXSEED (>= 64 hex).
xr_stream() {
	openssl enc -aes-128-ctr -nosalt -K "${1:0:32}" -iv "${1:32:32}" </dev/zero 2>/dev/null
}

# xr_replace_atomic FILE TMP EPOCH: renames TMP over FILE the way the signer saves keyconf.xml
# (FILE's mode and owner kept) after setting TMP's mtime to EPOCH.
xr_replace_atomic() {
	local file=$1 tmp=$2 epoch=$3
	if [ -e "$file" ]; then
		chmod --reference="$file" -- "$tmp"
		[ "$(id -u)" = 0 ] && chown --reference="$file" -- "$tmp"
	fi
	touch -d "@$epoch" -- "$tmp" && mv -f -- "$tmp" "$file"
}

# xr_now: prints the current time as seconds.nanoseconds.
xr_now() {
	printf '%s' "${EPOCHREALTIME/[,]/.}"
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
	(umask 0007 && cat -- "$dir/signer/keyconf.xml" >"$tmp") || return 1
	xr_replace_atomic "$dir/signer/keyconf.xml" "$tmp" "$epoch"
}

# xroad_edit_keyconf DIR [EPOCH]: changes keyconf.xml (the first key's friendly name gets
# " #N", N incremented on each call, so the size changes too) through tmp+rename.
xroad_edit_keyconf() {
	local dir=$1 epoch=${2:-$(xr_now)} tmp
	tmp=$dir/signer/tmpconf$((RANDOM * 32768 + RANDOM)).tmp
	(umask 0007 && awk -v mode=edit "$XR_AWK" <"$dir/signer/keyconf.xml" >"$tmp") ||
		return 1
	xr_replace_atomic "$dir/signer/keyconf.xml" "$tmp" "$epoch"
}

# xroad_add_key DIR [EPOCH]: writes a new softtoken .p12 in place (not atomically, as the
# signer does), then a keyconf.xml naming it (tmp+rename); prints the new key id.
xroad_add_key() {
	local dir=$1 epoch=${2:-$(xr_now)} tmp info id k iv size p12
	tmp=$dir/signer/tmpconf$((RANDOM * 32768 + RANDOM)).tmp
	info=$( (umask 0007 && awk -v mode=addkey "$XR_AWK" <"$dir/signer/keyconf.xml" \
		>"$tmp") 2>&1) || return 1
	read -r id k iv size <<<"$info"
	p12=$dir/signer/softtoken/$id.p12
	(umask 0027 && xr_stream "$k$iv" | head -c "$size" >"$p12") || return 1
	[ "$(id -u)" = 0 ] && chown --reference="$dir/signer/softtoken" -- "$p12"
	touch -d "@$epoch" -- "$p12" || return 1
	xr_replace_atomic "$dir/signer/keyconf.xml" "$tmp" "$epoch" || return 1
	printf '%s\n' "$id"
}

# xroad_tree DIR [SEED]: creates the tree in DIR (created if absent); see the file header.
xroad_tree() {
	local dir=${1%/} seed=${2:-1} h size path base d i
	local -A groups=()
	[ -n "$dir" ] || return 2
	(
		set -e
		umask 0027
		mkdir -p "$dir"
		cd "$dir"
		mkdir -p conf.d/addons services signer/softtoken ssl jetty backup.d globalconf/EE \
			globalconf/FI-TEST gpghome/private-keys-v1.d postgresql
		: >backup.d/xroad-proxy
		: >backup.d/xroad-signer
		: >backup.d/xroad-confclient
		: >backup.d/xroad-proxy-ui-api
		h=$(printf 'xroad_tree:%s' "$seed" | sha256sum)
		awk -v mode=tree -v seed="$seed" -v dir=. "$XR_AWK" >.bin.list
		xr_stream "$h" | {
			while read -r size path <&3; do
				head -c "$size" >"$path"
			done 3<.bin.list
		}
		rm -f .bin.list
		find . -type d -exec chmod 0750 {} + -o -type f -exec chmod 0640 {} +
		chmod 0751 .
		chmod 0440 backup.d/*
		chmod 0660 signer/tmpconf123.tmp
		chmod -R go-rwx gpghome
		chmod 0700 postgresql
		chmod 0400 postgresql/*
	) || return 1
	if [ "$(id -u)" = 0 ]; then
		if ! getent passwd xroad >/dev/null; then
			getent group xroad >/dev/null || groupadd --system xroad || return 1
			useradd --system --gid xroad --home-dir /var/lib/xroad --create-home \
				--shell /bin/bash xroad || return 1
		fi
		chown -R xroad:xroad "$dir" || return 1
		if getent passwd postgres >/dev/null; then
			chown -R postgres:postgres "$dir/postgresql" || return 1
		fi
	fi
	# fixed mtimes: one per directory's files, later ones for the key material, then the dirs
	h=$(printf 'mtime:%s' "$seed" | cksum)
	base=$((1699990000 + ${h%% *} % 86400))
	while IFS= read -r -d '' d && IFS= read -r -d '' path; do
		groups[$d]+="$path"$'\n'
	done < <(find "$dir" -mindepth 1 ! -type d -printf '%h\0%p\0')
	i=0
	for d in "${!groups[@]}"; do
		printf '%s\0' "$d"
	done | LC_ALL=C sort -z >"$dir/.groups"
	while IFS= read -r -d '' d; do
		i=$((i + 1))
		mapfile -t path <<<"${groups[$d]%$'\n'}"
		touch -h -d "@$((base + i * 3607)).$(printf '%09d' $(((i * 7919 + base) * 104729 % 1000000000)))" \
			-- "${path[@]}" || return 1
	done <"$dir/.groups"
	rm -f "$dir/.groups"
	touch -d "@$((base + 86400)).250000000" -- "$dir/signer/softtoken/"*.p12 || return 1
	touch -d "@$((base + 86460)).500000000" -- "$dir/signer/keyconf.xml" || return 1
	find "$dir" -type d -exec touch -d "@$((base + 90000)).125000000" {} + || return 1
}
