#!/usr/bin/env bash
# Builds the Apache Dubbo Java test peer into one jar (target/dubbo-java-peer.jar)
# when pom.xml or src/ changed since the last build, and prints the jar's path.
# Maven's local repository is its default (~/.m2) unless MAVEN_OPTS says otherwise.
set -euo pipefail
cd "$(dirname "$0")"

jar="$PWD/target/dubbo-java-peer.jar"
stamp="target/build.stamp"
hash=$( (cat pom.xml; find src -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)

if [ ! -f "$jar" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
  command -v mvn >/dev/null || { echo "build.sh: Maven (mvn) is needed: apt-get install maven" >&2; exit 1; }
  mvn -q -B -Dstyle.color=never package >&2
  [ -f "$jar" ] || { echo "build.sh: mvn package made no $jar" >&2; exit 1; }
  echo "$hash" >"$stamp"
fi
echo "$jar"
