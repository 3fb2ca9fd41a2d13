#!/usr/bin/env bash
# Installs Temporal's time-skipping test server (the Java one from sdk-java) for the workflow tests
# that skip hours of timers. @temporalio/testing would download a native build from a host that is
# not reachable here, so this fetches the jar and its dependencies from Maven Central and writes a
# wrapper that TestWorkflowEnvironment.createTimeSkipping() runs as an `existing-path` executable.
# Safe to run again: it only fetches what is missing.
#
#   VAQUERO_CACHE                 where downloaded tools live (default /var/cache/vaquero)
#   TEMPORAL_TEST_SERVER_VERSION  io.temporal:temporal-test-server version (default 1.38.0)
#
# Result: $VAQUERO_CACHE/bin/temporal-test-server <port> (what the SDK runs); the jars, their class
# path and a class data archive in $VAQUERO_CACHE/temporal-test-server/<version>/.
set -euo pipefail

TEMPORAL_TEST_SERVER_VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.38.0}"
VAQUERO_CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
SERVER_DIR="$VAQUERO_CACHE/temporal-test-server"
VERSION_DIR="$SERVER_DIR/$TEMPORAL_TEST_SERVER_VERSION"
LIB_DIR="$VERSION_DIR/lib"
ARGFILE="$VERSION_DIR/java.args"
ARCHIVE="$VERSION_DIR/classes.jsa"
STAMP="$VERSION_DIR/installed"
WRAPPER="$VAQUERO_CACHE/bin/temporal-test-server"
# Maven 3.8's default dependency plugin (2.8) predates `includeScope` fixes; pin a current one.
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
# The SDK gives the server five seconds to answer; on a busy two-core machine a plain JVM takes three
# to five. C1 only, the serial GC and a class data archive of the server's classes make it about one.
JVM_OPTS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC)

log() { printf 'install-test-server: %s\n' "$*"; }
die() {
  printf 'install-test-server: error: %s\n' "$*" >&2
  exit 1
}

WORK_DIR="$(mktemp -d)"
SERVER_PID=
STARTUP_MS=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT

# Maven 3.8 writes colour resets even in batch mode.
no_color() { sed 's/\x1b\[[0-9;]*m//g'; }

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

install_java_and_maven() {
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    log "java and mvn found ($(java -version 2>&1 | head -n 1); $(mvn -v 2>/dev/null | head -n 1 | no_color))"
    return 0
  fi
  command -v apt-get >/dev/null || die "java or mvn is missing and apt-get is not there to install them"
  log "apt: installing default-jre-headless maven"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends default-jre-headless maven
}

installed() {
  [[ -f "$STAMP" && -f "$LIB_DIR/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION.jar" ]]
}

fetch_jars() {
  log "maven: fetching io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION and its dependencies from Maven Central"
  cat >"$WORK_DIR/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vaquero</groupId>
  <artifactId>temporal-test-server-install</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>$TEMPORAL_TEST_SERVER_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  # The local repository lives in the cache too: a later version shares what it can, and nothing
  # lands in the home directory of whoever ran this.
  mvn -B -q -f "$WORK_DIR/pom.xml" -Dmaven.repo.local="$SERVER_DIR/m2" \
    "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$WORK_DIR/lib" 2>&1 |
    no_color || die "mvn could not fetch io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION"
  as_root mkdir -p "$VERSION_DIR"
  as_root rm -rf "$LIB_DIR" "$ARCHIVE"
  as_root cp -r "$WORK_DIR/lib" "$LIB_DIR"
  log "maven: $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $LIB_DIR ($(du -sh "$LIB_DIR" | cut -f1))"
}

# A java @argfile with the jars in a fixed order: a class data archive is only used with the class
# path it was made with.
write_classpath() {
  local classpath
  classpath="$(find "$LIB_DIR" -name '*.jar' | sort | paste -sd :)"
  printf -- '-cp\n"%s"\n' "$classpath" >"$WORK_DIR/java.args"
  if [[ -f "$ARGFILE" ]] && cmp -s "$WORK_DIR/java.args" "$ARGFILE"; then return 0; fi
  as_root install -m 644 "$WORK_DIR/java.args" "$ARGFILE"
  as_root rm -f "$ARCHIVE"
}

write_wrapper() {
  local java
  java="$(command -v java)"
  # `exec`: the SDK stops the server by killing the process it started, so that must be the JVM.
  # Without the archive (a newer JDK refuses an old one) the JVM starts all the same, only slower.
  cat >"$WORK_DIR/wrapper" <<EOF
#!/bin/sh
# Written by scripts/install-test-server.sh: io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION
# from Maven Central. Usage: temporal-test-server <port> (what @temporalio/testing passes).
archive='$ARCHIVE'
if [ -f "\$archive" ]; then share="-XX:SharedArchiveFile=\$archive"; else share=-Xshare:auto; fi
# shellcheck disable=SC2086
exec '$java' ${JVM_OPTS[*]} "\$share" \${TEMPORAL_TEST_SERVER_JAVA_OPTS:-} \\
  @'$ARGFILE' io.temporal.testserver.TestServer "\$@"
EOF
  as_root mkdir -p "$(dirname "$WRAPPER")"
  if [[ -f "$WRAPPER" ]] && cmp -s "$WORK_DIR/wrapper" "$WRAPPER"; then
    log "wrapper: $WRAPPER is up to date"
    return 0
  fi
  as_root install -m 755 "$WORK_DIR/wrapper" "$WRAPPER.new"
  as_root mv -f "$WRAPPER.new" "$WRAPPER"
  as_root rm -f "$ARCHIVE"
  log "wrapper: wrote $WRAPPER"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo 17233
}

# Starts a server (with extra JVM options) on a free port and waits until it listens; sets
# SERVER_PID, and STARTUP_MS to the milliseconds that took.
start_server() {
  local port started waited=0
  port="$(free_port)"
  started="$(date +%s%N)"
  TEMPORAL_TEST_SERVER_JAVA_OPTS="$*" "$WRAPPER" "$port" >"$WORK_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK_DIR/server.log" >&2
      die "the test server exited before it listened on port $port"
    fi
    ((waited++ < 600)) || die "the test server did not listen on port $port within 60 s"
    sleep 0.1
  done
  STARTUP_MS=$((($(date +%s%N) - started) / 1000000))
}

stop_server() {
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# JDK 17 writes a dynamic class data archive of what a run loaded when that run exits, SIGTERM
# included.
build_archive() {
  if [[ -f "$ARCHIVE" ]]; then
    log "class data archive: $ARCHIVE is there"
    return 0
  fi
  log "class data archive: one training run of the server"
  as_root mkdir -p "$VERSION_DIR"
  start_server "-XX:ArchiveClassesAtExit=$WORK_DIR/classes.jsa"
  sleep 1
  stop_server
  if [[ -f "$WORK_DIR/classes.jsa" ]]; then
    as_root install -m 644 "$WORK_DIR/classes.jsa" "$ARCHIVE"
    log "class data archive: wrote $ARCHIVE ($(du -sh "$ARCHIVE" | cut -f1))"
  else
    log "class data archive: the JVM wrote none; the server starts without it, only slower"
  fi
}

main() {
  install_java_and_maven
  if installed; then
    log "temporal-test-server $TEMPORAL_TEST_SERVER_VERSION already in $LIB_DIR, keeping it"
  else
    fetch_jars
  fi
  write_classpath
  write_wrapper
  build_archive
  start_server
  stop_server
  log "smoke test: $WRAPPER listened after $STARTUP_MS ms"
  printf '%s\n' "io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION from Maven Central" |
    as_root tee "$STAMP" >/dev/null
  log "done: $WRAPPER"
}

main "$@"
