# Sourced by the scripts: installs the system readers the tests hold ZIP exports to
# (Info-ZIP's unzip, libarchive's bsdtar, a JDK for java.util.zip), with apt-get and
# only those whose command is missing, so a second run does nothing.
system_tools_missing=()
for system_tool in unzip:unzip bsdtar:libarchive-tools java:default-jdk-headless javac:default-jdk-headless; do
  if ! command -v "${system_tool%%:*}" > /dev/null; then
    system_tools_package=${system_tool#*:}
    # java and javac come from the same package: ask for it once.
    [[ " ${system_tools_missing[*]} " == *" $system_tools_package "* ]] || system_tools_missing+=("$system_tools_package")
  fi
done
if [ "${#system_tools_missing[@]}" -gt 0 ]; then
  if ! command -v apt-get > /dev/null; then
    echo "infra/system_tools.sh: install ${system_tools_missing[*]} (Debian names), or their equivalents; there is no apt-get here" >&2
    return 1 2> /dev/null || exit 1
  fi
  echo "== installing ${system_tools_missing[*]} with apt-get"
  system_tools_sudo=()
  [ "$(id -u)" -eq 0 ] || system_tools_sudo=(sudo)
  # A fresh machine or container may have no package lists yet.
  "${system_tools_sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq > /dev/null
  "${system_tools_sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${system_tools_missing[@]}" > /dev/null
fi
unset system_tool system_tools_missing system_tools_package system_tools_sudo
