// Placeholder until the integration suite's engine checks land.
export default function globalSetup(): void {}
