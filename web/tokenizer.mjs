// ES module entry point of web/tokenizer.js (which also runs as a classic script and under Node).
import "./tokenizer.js";

const api = globalThis.KerasLstmTokenizer;
export const { Tokenizer, ContractError, encodeJsonLine, FORMAT_VERSION } = api;
export default api;
