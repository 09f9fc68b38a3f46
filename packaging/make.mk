# packaging/make.mk - installation of the operations files, and the Debian package.
# Included by the top-level Makefile (include packaging/make.mk); also usable without it:
#   make -f Makefile -f packaging/make.mk install DESTDIR=/tmp/root
#
#   make install-extra  units, man page, logrotate file, configuration (make install runs it)
#   make deb            $(BUILD)/xroad-replicate_VERSION-REV_ARCH.deb (dpkg-buildpackage)
#
# Uses the Makefile's PREFIX, DESTDIR, BUILD.  Installed paths:
#   $(PREFIX)/bin/xroad-replicate                (the Makefile's install)
#   $(MANDIR)/man1/xroad-replicate.1
#   $(SYSTEMDUNITDIR)/xroad-replicate-{pull.service,pull.timer,watch.service}
#   $(SYSCONFDIR)/logrotate.d/xroad-replicate
#   $(SYSCONFDIR)/xroad-replicate.conf, $(SYSCONFDIR)/default/xroad-replicate
# The units name /usr/bin/xroad-replicate; they are installed with $(PREFIX)/bin instead.
# The two configuration files are not overwritten when they exist (they hold the node's
# settings, e.g. XROAD_PRIMARY).
ifndef XR_PACKAGING_MK
XR_PACKAGING_MK := 1

PREFIX     ?= /usr
BUILD      ?= build
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
ifeq ($(origin SYSTEMDUNITDIR),undefined)
SYSTEMDUNITDIR := $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),\
                       /lib/systemd/system)
endif

XR_UNITS   := $(wildcard packaging/systemd/*.service packaging/systemd/*.timer)
# dpkg-buildpackage options (override e.g. DEB_OPTS="-us -uc -b -j4")
DEB_OPTS   ?= -us -uc -b -jauto
DEB_WORK   := $(BUILD)/deb

.PHONY: install-extra deb
install: install-extra

install-extra:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	for u in $(XR_UNITS); do \
		sed 's|/usr/bin/xroad-replicate|$(PREFIX)/bin/xroad-replicate|g' $$u \
			>$(DESTDIR)$(SYSTEMDUNITDIR)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${u##*/} || exit 1; \
	done
	install -D -m 0644 doc/xroad-replicate.1 $(DESTDIR)$(MANDIR)/man1/xroad-replicate.1
	install -D -m 0644 packaging/logrotate/xroad-replicate \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d/xroad-replicate
	test -e $(DESTDIR)$(SYSCONFDIR)/xroad-replicate.conf || \
		install -D -m 0644 packaging/xroad-replicate.conf \
			$(DESTDIR)$(SYSCONFDIR)/xroad-replicate.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/default/xroad-replicate || \
		install -D -m 0644 packaging/default/xroad-replicate \
			$(DESTDIR)$(SYSCONFDIR)/default/xroad-replicate

# Builds in a copy of the source (the files git knows, or the tree without build output),
# so that the package build's clean step never touches $(BUILD) and nothing is written
# next to the source tree; the .deb files end up in $(BUILD).
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || \
		{ echo "make deb: needs dpkg-dev and debhelper (apt-get install dpkg-dev" \
		       "debhelper)" >&2; exit 1; }
	rm -rf $(DEB_WORK)
	mkdir -p $(DEB_WORK)/src
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z -c -o --exclude-standard | \
			tar --null -T - --ignore-failed-read -cf -; \
	else \
		tar --exclude=./.git --exclude='./build*' --exclude=./$(BUILD) \
		    --exclude=./bench/work -cf - .; \
	fi | tar -C $(DEB_WORK)/src -xf -
	cd $(DEB_WORK)/src && dpkg-buildpackage $(DEB_OPTS)
	mv $(DEB_WORK)/*.deb $(BUILD)/
	rm -rf $(DEB_WORK)
	@ls -1 $(BUILD)/*.deb

endif
