#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars named in pom.xml from Maven Central into infra/kafka/libs/.
# Idempotent and fast when the jars are there: a stamp records the pom.xml they were fetched for.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
libs="$here/libs"
stamp="$libs/.complete"
want="$(sha256sum "$here/pom.xml" | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if ! command -v java >/dev/null 2>&1 && [[ -z "${JAVA_HOME:-}" ]]; then
  echo "fetch-jars: Java 17+ is needed for the local Kafka broker; install it or set JAVA_HOME" >&2
  exit 3
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "fetch-jars: Maven (mvn) is needed to fetch the Kafka jars from Maven Central; install it (e.g. apt-get install maven)" >&2
  exit 3
fi

echo "fetch-jars: fetching Apache Kafka broker jars from Maven Central into $libs ..." >&2
tmp="$libs.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
# (Maven prints colour codes even with -B on some installs: strip them.)
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
count="$(ls "$tmp"/*.jar 2>/dev/null | wc -l)"
if [[ "$count" -lt 10 ]] || ! ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1; then
  echo "fetch-jars: Maven finished but kafka_2.13 is not among the $count jars in $tmp" >&2
  exit 4
fi
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "$want" > "$stamp"
echo "fetch-jars: $count jars ready in $libs" >&2
