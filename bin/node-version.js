// The Node.js lines sagactl is tested on (package.json "engines"); plain JavaScript, so that an
// older Node reaches this check before it fails on syntax or a missing API in a dependency.
export const SUPPORTED = '22.22+, 24.6+ or 26'

/** One sentence when this Node.js is too old to run sagactl, otherwise undefined. */
export function nodeTooOld(version) {
  const [major, minor] = version.split('.').map(Number)
  const ok = (major === 22 && minor >= 22) || (major === 24 && minor >= 6) || major >= 25
  return ok ? undefined : `sagactl needs Node.js ${SUPPORTED}; this is Node.js ${version}. Install a current LTS from nodejs.org (or nvm install 24).`
}
